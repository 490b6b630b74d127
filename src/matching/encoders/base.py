"""Pluggable text encoders: the same stage code runs a hub model, a local model folder or the offline
lexical backend.

Every encoder sees each distinct text once; texts are encoded in order of length so that batches
pad little, and the vectors are put back in the caller's order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from matching.errors import ConfigError

TextEncoder = Callable[[Sequence[str]], np.ndarray]


UNFITTED = "unfitted.json"  # saved in place of a lexical encoder that had no text to fit on
# Texts are cut to this many characters a token before tokenizing: a tokenizer reads a whole string before
# it truncates, and descriptions can be long; no real text needs more characters for its tokens.
TOKEN_CHARS = 10
STATIC = "static.json"  # a static encoder's settings; its model is the distill stage's output


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


def unloadable_model(source: str, model: str, error: Exception, verb: str = "loaded") -> ConfigError:
    """The one-line error for a model that cannot be loaded: an unreachable hub, a name that is not a
    model, a broken folder."""
    where = "the folder exists but holds no loadable model" if Path(model).exists() else "not a local folder"
    return ConfigError(
        f"{source} {model!r} cannot be {verb} ({where}; {str(error).splitlines()[0]}); without a network, "
        "download it where there is one and set the model to its local folder, or use the offline encoder "
        "(encoder=lexical)"
    )
