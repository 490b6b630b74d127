"""Exact nearest-neighbour search by inner product, for measuring what the index misses."""

from __future__ import annotations

import numpy as np

CATALOG_BLOCK = 50_000  # catalog rows a matrix product at a time: 2,000 queries x 50,000 is 0.4 GB of scores


def exact_neighbours(catalog: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the k catalog vectors with the largest inner product with each query, best first, and
    those products; a block of catalog rows at a time, keeping the best k so far."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.full((len(queries), k), -1, dtype=np.int64)
    for start in range(0, len(catalog), CATALOG_BLOCK):
        scores = np.hstack([best_scores, queries @ catalog[start : start + CATALOG_BLOCK].T])
        block_rows = np.arange(start, start + scores.shape[1] - k)
        rows = np.hstack([best_rows, np.broadcast_to(block_rows, (len(queries), len(block_rows)))])
        top = np.argpartition(-scores, min(k, scores.shape[1] - 1) - 1, axis=1)[:, :k]
        best_scores, best_rows = np.take_along_axis(scores, top, 1), np.take_along_axis(rows, top, 1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_rows, order, 1), np.take_along_axis(best_scores, order, 1)
