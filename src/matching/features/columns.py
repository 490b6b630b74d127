"""Names of the feature files' columns: the pair keys, what is not a model input, each group's prefix."""

from __future__ import annotations

import pandas as pd

KEYS = ["variantid1", "variantid2"]
# Columns of the feature files that are not model inputs.
META = KEYS + ["target", "category"]
# Each group's columns start with its prefix, so a group can be switched off or ablated by it;
# `neighbours` names its columns nbr_<ranked column>.
PREFIX = {
    "embeddings": "emb_",
    "category": "cat_",
    "attributes": "attr_",
    "text": "text_",
    "codes": "code_",
    "photos": "photo_",
    "neighbours": "nbr_",
}


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in META]
