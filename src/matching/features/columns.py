"""Names of the feature files' columns: the pair keys, what is not a model input, each group's prefix."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

KEYS = ["variantid1", "variantid2"]
# Columns of the feature files that are not model inputs.
META = KEYS + ["target", "category"]


def feature_columns(columns: pd.DataFrame | list[str]) -> list[str]:
    """The model inputs among a feature frame's columns (or a feature file's column names)."""
    names = columns.columns if isinstance(columns, pd.DataFrame) else columns
    return [c for c in names if c not in META]


class FeatureMatrix(NamedTuple):
    """A feature file's model inputs as one float32 matrix (pairs x features) and the features' names."""

    values: np.ndarray
    columns: list[str]
