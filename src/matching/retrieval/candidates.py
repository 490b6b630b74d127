"""A query's candidates from what a search returned: never the query itself, best first."""

from __future__ import annotations

import numpy as np
import pandas as pd

from matching.errors import DataError


def without_self(
    query_ids: np.ndarray, found_ids: np.ndarray, scores: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first k found products of each query that are not the query (search asks for k + 1); a
    missing slot (-1) stays last. Stable, so the search's order is kept."""
    pushed_back = (found_ids == query_ids[:, None]) | (found_ids < 0)
    order = np.argsort(pushed_back, axis=1, kind="stable")[:, :k]
    kept_ids, kept_scores = np.take_along_axis(found_ids, order, 1), np.take_along_axis(scores, order, 1)
    is_self = kept_ids == query_ids[:, None]
    return np.where(is_self, -1, kept_ids), np.where(is_self | (kept_ids < 0), np.nan, kept_scores)


def candidate_table(query_ids: np.ndarray, found_ids: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """One row a (query, candidate): query_id, candidate_id, rank (1 = nearest), ann_score."""
    present = found_ids >= 0
    ranks = np.broadcast_to(np.arange(1, found_ids.shape[1] + 1), found_ids.shape)
    return pd.DataFrame(
        {
            "query_id": np.broadcast_to(query_ids[:, None], found_ids.shape)[present],
            "candidate_id": found_ids[present],
            "rank": ranks[present].astype(np.int32),
            "ann_score": scores[present].astype(np.float32),
        }
    )


def catalog_rows(catalog_ids: np.ndarray, query_ids: np.ndarray, source: str) -> np.ndarray:
    """Each query's row in the catalog; a query the catalog lacks stops with one line naming it."""
    rows = pd.Index(catalog_ids).get_indexer(query_ids)
    unknown = query_ids[rows < 0]
    if len(unknown):
        raise DataError(
            f"{source}: product {unknown[0]} is not in the catalog ({len(unknown):,} unknown of {len(query_ids):,}); "
            "query products the index was built over, or give new products as cards"
        )
    return rows
