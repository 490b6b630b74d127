"""The offline text encoder: character n-gram TF-IDF reduced by TruncatedSVD, no weights to download."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matching import THREADS
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
    from sklearn.feature_extraction.text import TfidfVectorizer

    def encode(texts: Sequence[str]) -> np.ndarray:
        tfidf = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(ngram_min, ngram_max),
            max_features=max_features,
            sublinear_tf=True,
            lowercase=True,
            dtype=np.float32,
        )
        sample = fit_sample_rows(len(texts), fit_sample, seed)
        matrix = tfidf.fit_transform([texts[i] for i in sample])
        components = min(dim, matrix.shape[0] - 1, matrix.shape[1] - 1)
        vectors = np.zeros((len(texts), dim), dtype=np.float32)
        if components >= 1:
            svd = TruncatedSVD(n_components=components, random_state=seed)
            vectors[sample, :components] = svd.fit_transform(matrix)
            rest = np.setdiff1d(np.arange(len(texts)), sample)
            for start in range(0, len(rest), chunk):
                rows = rest[start : start + chunk]
                vectors[rows, :components] = svd.transform(transform_in_parallel(tfidf, [texts[i] for i in rows]))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    return encode


def transform_in_parallel(vectorizer, texts: list[str], min_texts: int = 20_000):
    """`vectorizer.transform(texts)` split over `MATCHING_THREADS` processes: scikit-learn counts character
    n-grams in Python, so this is the slow part of TF-IDF on millions of texts."""
    from joblib import Parallel, delayed
    from scipy import sparse

    jobs = THREADS
    if jobs < 2 or len(texts) < min_texts:
        return vectorizer.transform(texts)
    step = -(-len(texts) // jobs)
    parts = Parallel(n_jobs=jobs)(
        delayed(vectorizer.transform)(texts[i : i + step]) for i in range(0, len(texts), step)
    )
    return sparse.vstack(parts).tocsr()


def fit_sample_rows(n: int, limit: int, seed: int) -> np.ndarray:
    """All rows when there are at most `limit`, else a seeded sample of `limit` rows, in order."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))
