"""Names of the feature files' columns: the pair keys, what is not a model input, each group's prefix."""

from __future__ import annotations

import pandas as pd

KEYS = ["variantid1", "variantid2"]
# Columns of the feature files that are not model inputs.
META = KEYS + ["target", "category"]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in META]
