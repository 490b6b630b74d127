"""Pluggable text encoders: the same stage code runs a hub model, a local model folder or the offline
lexical backend.

Every encoder sees each distinct text once; texts are encoded in order of length so that batches
pad little, and the vectors are put back in the caller's order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

TextEncoder = Callable[[Sequence[str]], np.ndarray]


UNFITTED = "unfitted.json"  # saved in place of a lexical encoder that had no text to fit on


def no_text_encoder(texts: Sequence[str]) -> np.ndarray:
    """Stands in for a lexical encoder fitted on no text: a missing (NaN) vector for every text, of
    the width encode_distinct gives the products when none of them has a text."""
    return np.full((len(texts), 1), np.nan, dtype=np.float32)


def encode_distinct(texts: pd.Series, encode: TextEncoder) -> np.ndarray:
    """One vector per row, each distinct text encoded once; a missing text gives a NaN row."""
    codes, uniques = pd.factorize(texts, use_na_sentinel=True)
    if len(uniques) == 0:
        return np.full((len(texts), 1), np.nan, dtype=np.float32)
    unique_vectors = np.asarray(encode(list(uniques)), dtype=np.float32)
    vectors = unique_vectors[np.maximum(codes, 0)]
    vectors[codes < 0] = np.nan
    return vectors
