"""TF-IDF rows of products for a chunk of pairs (vocabularies: `matching.features.fitted`), and their cosines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

from matching.encoders.tfidf import TfidfVocabulary


def texts_at(texts: pa.Array, rows: np.ndarray) -> pa.Array:
    """The texts of product `rows` for a chunk of pairs; a row of -1 (an unknown product) gives null."""
    taken = texts.take(pa.array(np.maximum(rows, 0)))
    return pc.if_else(pa.array(rows < 0), pa.scalar(None, taken.type), taken)


def sparse_cosine(a: sparse.csr_matrix, b: sparse.csr_matrix, rows: list[np.ndarray]) -> np.ndarray:
    """Row-wise cosine of L2-normalised sparse rows; NaN where a product is unknown or has no text."""
    dot = np.asarray(a.multiply(b).sum(axis=1)).ravel()
    empty = (a.getnnz(axis=1) == 0) | (b.getnnz(axis=1) == 0) | (rows[0] < 0) | (rows[1] < 0)
    return np.where(empty, np.nan, dot).astype(np.float32)


@dataclass
class Tfidf:
    """A TF-IDF vocabulary fitted on a sample of the distinct texts (None: no text had a term), and every
    product's text."""

    vocabulary: TfidfVocabulary | None
    texts: pa.Array

    def rows(self, product_rows: np.ndarray) -> sparse.csr_matrix:
        if self.vocabulary is None:
            return sparse.csr_matrix((len(product_rows), 1), dtype=np.float32)
        return self.vocabulary.transform(texts_at(self.texts, product_rows))

    def cosine(self, rows: list[np.ndarray]) -> np.ndarray:
        return sparse_cosine(self.rows(rows[0]), self.rows(rows[1]), rows)
