"""Cleaning the pairs: test pairs out of train, repeats collapsed, contradictions dropped, sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd

from matching.io import DataError


def unordered_key(left: np.ndarray, right: np.ndarray) -> pd.MultiIndex:
    """A key that is the same for (a, b) and (b, a)."""
    return pd.MultiIndex.from_arrays([np.minimum(left, right), np.maximum(left, right)])


def clean_train_pairs(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Drop test pairs (either orientation), collapse repeated pairs, drop contradicting ones."""
    train_key = unordered_key(train.variantid1.to_numpy(), train.variantid2.to_numpy())
    test_key = unordered_key(test.variantid1.to_numpy(), test.variantid2.to_numpy())
    in_test = train_key.isin(test_key)
    train, train_key = train[~in_test], train_key[~in_test]

    labels = train.groupby([train_key.get_level_values(0), train_key.get_level_values(1)])["target"]
    contradicting = (labels.transform("nunique") > 1).to_numpy()
    repeated = train_key.duplicated(keep="first")
    kept = train[~contradicting & ~repeated].reset_index(drop=True)
    counts = {
        "test_pairs_dropped_from_train": int(in_test.sum()),
        "repeated_pairs_collapsed": int((repeated & ~contradicting).sum()),
        "contradicting_pairs_dropped": int(contradicting.sum()),
    }
    return kept, counts


def sample_pairs(pairs: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    if not 0 < fraction <= 1:
        raise DataError(f"params.yaml: data.sample is {fraction}; use a fraction in (0, 1]")
    if fraction == 1:
        return pairs
    return pairs.sample(frac=fraction, random_state=seed).sort_index().reset_index(drop=True)


def check_known_ids(pairs: pd.DataFrame, known: np.ndarray, label: str) -> None:
    for column in ("variantid1", "variantid2"):
        unknown = ~np.isin(pairs[column].to_numpy(), known)
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise DataError(
                f"{label}: column {column} names product {pairs[column].iat[row]} at row {row} "
                f"({int(unknown.sum())} rows in all) that is not in attributes.parquet; "
                "use product files from the same archive as the pairs"
            )
