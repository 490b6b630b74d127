"""The offline text encoder: character n-gram TF-IDF reduced by TruncatedSVD, no weights to download.

Fitted once (`fit_lexical`) by the embed_text stage and saved beside its vectors (`LexicalEncoder.save`:
plain arrays, loaded without running code), so new texts are encoded exactly as the pipeline's were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from matching.encoders.base import TextEncoder
from matching.encoders.tfidf import TfidfVocabulary, arrow_texts, fit_tfidf_vocabulary, in_text_chunks
from matching.npz import read_arrays, write_arrays


@dataclass(frozen=True)
class LexicalEncoder:
    """A fitted TF-IDF vocabulary and the SVD's components: text -> TF-IDF row -> projection, unit length."""

    vocabulary: TfidfVocabulary | None  # None: the fitted texts held no n-gram
    components: np.ndarray  # (components, vocabulary terms) float32
    dim: int  # width of every vector; columns past the components are zeros

    def encode(self, texts: Sequence[str] | pa.Array, chunk: int = 65_536) -> np.ndarray:
        texts = arrow_texts(texts)
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        if self.vocabulary is None or len(self.components) == 0:
            return vectors
        projection = np.ascontiguousarray(self.components.T)
        projected = in_text_chunks(  # one thread a chunk: TF-IDF and the sparse product both release the GIL
            lambda part: self.vocabulary.transform(part, threads=1) @ projection, texts, chunk=chunk
        )
        if projected:
            vectors[:, : len(self.components)] = np.concatenate(projected)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    def save(self, path: Path) -> None:
        vocabulary = self.vocabulary.to_arrays("tfidf_") if self.vocabulary is not None else {}
        write_arrays({"dim": np.array([self.dim]), "components": self.components, **vocabulary}, path)

    @classmethod
    def load(cls, path: Path) -> LexicalEncoder:
        arrays = read_arrays(path)
        vocabulary = TfidfVocabulary.from_arrays(arrays, "tfidf_") if "tfidf_header" in arrays else None
        return cls(vocabulary, np.array(arrays["components"], np.float32), int(arrays["dim"][0]))


def fit_lexical(
    texts: Sequence[str] | pa.Array,
    dim: int,
    ngram_min: int,
    ngram_max: int,
    max_features: int,
    seed: int,
    fit_sample: int = 200_000,
) -> LexicalEncoder:
    """TF-IDF and SVD fitted on a seeded sample of at most `fit_sample` of `texts` (all when fewer)."""
    from sklearn.decomposition import TruncatedSVD

    texts = arrow_texts(texts)
    sample_texts = texts.take(pa.array(fit_sample_rows(len(texts), fit_sample, seed)))
    vocabulary = fit_tfidf_vocabulary(sample_texts, "char_wb", (ngram_min, ngram_max), max_features)
    components = np.zeros((0, 0), dtype=np.float32)
    if vocabulary is not None:
        matrix = vocabulary.transform(sample_texts)
        n_components = min(dim, matrix.shape[0] - 1, matrix.shape[1] - 1)
        if n_components >= 1:
            svd = TruncatedSVD(n_components=n_components, random_state=seed).fit(matrix)
            components = svd.components_.astype(np.float32)
    return LexicalEncoder(vocabulary, components, dim)


def lexical_encoder(
    seed: int, fitted: list[LexicalEncoder] | None = None, chunk: int = 65_536, **settings: int
) -> TextEncoder:
    """An encoder that fits on the texts it is given (`settings`: `fit_lexical`'s dim, ngram_min,
    ngram_max, max_features and fit_sample), then encodes them all the same way; the fitted encoder is
    appended to `fitted` (the stage saves it)."""

    def encode(texts: Sequence[str]) -> np.ndarray:
        texts = arrow_texts(texts)  # once: fitting and encoding both read the Arrow array
        encoder = fit_lexical(texts, seed=seed, **settings)
        if fitted is not None:
            fitted.append(encoder)
        return encoder.encode(texts, chunk)

    return encode


def fit_sample_rows(n: int, limit: int, seed: int) -> np.ndarray:
    """All rows when there are at most `limit`, else a seeded sample of `limit` rows, in order."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))
