"""What the pair features learn from the products, fitted once and saved by the features stage.

TF-IDF vocabularies and idf weights, each category's share of the products, and each level-2
category's most frequent attribute keys. Saved under `models/features/` as plain arrays and parquet
(no pickles), so new products get their features from the same vocabularies and statistics as the
training products, without refitting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matching.encoders.lexical import fit_sample_rows
from matching.encoders.tfidf import TfidfVocabulary, fit_tfidf_vocabulary
from matching.io import write_parquet
from matching.npz import read_arrays, write_arrays

# Vocabulary name -> (the product text it reads, analyzer, n-gram range)
TFIDF = {
    "name_char": ("name", "char_wb", (2, 4)),
    "name_word": ("name", "word", (1, 1)),
    "description_word": ("description", "word", (1, 1)),
    "attributes_char": ("attributes", "char_wb", (2, 4)),
}


@dataclass
class FeatureTransforms:
    tfidf: dict[str, TfidfVocabulary | None]  # None: the texts held no term
    category_frequency: pd.DataFrame  # level ("1".."4"), category, frequency (share of all products)
    top_keys: pd.DataFrame  # category (level-2 name), key (text), slot (0: the most frequent key)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for name, vocabulary in self.tfidf.items():
            if vocabulary is not None:
                arrays.update(vocabulary.to_arrays(f"{name}."))
        write_arrays(arrays, folder / "tfidf.npz")
        write_parquet(self.category_frequency, folder / "category_frequency.parquet")
        write_parquet(self.top_keys, folder / "top_keys.parquet")

    @classmethod
    def load(cls, folder: Path) -> FeatureTransforms:
        arrays = read_arrays(folder / "tfidf.npz")
        tfidf = {
            name: TfidfVocabulary.from_arrays(arrays, f"{name}.") if f"{name}.header" in arrays else None
            for name in TFIDF
        }
        return cls(
            tfidf, pd.read_parquet(folder / "category_frequency.parquet"), pd.read_parquet(folder / "top_keys.parquet")
        )


def fit_text_vocabulary(
    texts: pa.Array, analyzer: str, ngrams: tuple[int, int], max_features: int, fit_sample: int, seed: int
) -> TfidfVocabulary | None:
    """TF-IDF (rows L2-normalised) fitted on at most `fit_sample` distinct texts, drawn by seed."""
    distinct = pc.unique(texts).drop_null()
    if len(distinct) > fit_sample:
        distinct = distinct.take(pa.array(fit_sample_rows(len(distinct), fit_sample, seed)))
    return fit_tfidf_vocabulary(distinct, analyzer, ngrams, max_features)


def category_frequencies(categories: dict[str, np.ndarray], names: dict[str, np.ndarray]) -> pd.DataFrame:
    """Each category's share of the products, per level (products without the level count in the total)."""
    parts = []
    for level, codes in categories.items():
        counts = np.bincount(codes[codes >= 0], minlength=len(names[level]))
        parts.append(
            pd.DataFrame(
                {"level": level, "category": names[level].astype(str), "frequency": counts / max(len(codes), 1)}
            )
        )
    return pd.concat(parts, ignore_index=True)
