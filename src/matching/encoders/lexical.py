"""The offline text encoder: character n-gram TF-IDF reduced by TruncatedSVD, no weights to download."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from matching.encoders.base import TextEncoder


def lexical_encoder(
    dim: int,
    ngram_min: int,
    ngram_max: int,
    max_features: int,
    seed: int,
    fit_sample: int = 200_000,
    chunk: int = 65_536,
) -> TextEncoder:
    """Character n-gram TF-IDF reduced by TruncatedSVD, unit length: no weights to download.

    TF-IDF and SVD are fitted on a seeded sample of at most `fit_sample` texts (all of them when
    there are fewer), then every text is projected chunk by chunk, so memory does not grow with
    the number of products."""
    from sklearn.decomposition import TruncatedSVD

    from matching.encoders.tfidf import fit_tfidf_vocabulary, in_text_chunks

    def encode(texts: Sequence[str]) -> np.ndarray:
        texts = pa.array(texts, type=pa.large_string())
        sample = fit_sample_rows(len(texts), fit_sample, seed)
        sample_texts = texts.take(pa.array(sample))
        tfidf = fit_tfidf_vocabulary(sample_texts, "char_wb", (ngram_min, ngram_max), max_features)
        vectors = np.zeros((len(texts), dim), dtype=np.float32)
        if tfidf is None:
            return vectors
        matrix = tfidf.transform(sample_texts)
        components = min(dim, matrix.shape[0] - 1, matrix.shape[1] - 1)
        if components >= 1:
            svd = TruncatedSVD(n_components=components, random_state=seed)
            vectors[sample, :components] = svd.fit_transform(matrix)
            rest = np.setdiff1d(np.arange(len(texts)), sample)
            projection = np.ascontiguousarray(svd.components_.T)
            projected = in_text_chunks(  # one thread a chunk: TF-IDF and the sparse product both release the GIL
                lambda part: tfidf.transform(part, threads=1) @ projection, texts.take(pa.array(rest)), chunk=chunk
            )
            if projected:
                vectors[rest, :components] = np.concatenate(projected)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    return encode


def fit_sample_rows(n: int, limit: int, seed: int) -> np.ndarray:
    """All rows when there are at most `limit`, else a seeded sample of `limit` rows, in order."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))
