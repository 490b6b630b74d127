"""How well retrieval finds the true matches: recall@k of known matching pairs, and of exact search."""

from __future__ import annotations

import numpy as np
import pandas as pd


def true_matches(pairs: pd.DataFrame) -> pd.DataFrame:
    """Every known match in both directions: (query_id, match_id) for each positive pair, each once."""
    positive = pairs.loc[pairs.target == 1, ["variantid1", "variantid2"]].to_numpy(np.int64)
    positive = positive[positive[:, 0] != positive[:, 1]]
    both = np.vstack([positive, positive[:, ::-1]])
    return pd.DataFrame(both, columns=["query_id", "match_id"]).drop_duplicates(ignore_index=True)


def hits(query_ids: np.ndarray, neighbours: np.ndarray, matches: pd.DataFrame) -> np.ndarray:
    """For each known match of an asked query, the rank (0-based) at which retrieval returned it, -1
    if not returned; matches of queries not asked are left out. `neighbours[i]` are the catalog ids
    found for `query_ids[i]`, nearest first (-1: none)."""
    rows = pd.Series(np.arange(len(query_ids)), index=query_ids).reindex(matches.query_id.to_numpy()).to_numpy()
    asked = ~np.isnan(rows)
    found = neighbours[rows[asked].astype(np.int64)] == matches.match_id.to_numpy()[asked, None]
    return np.where(found.any(axis=1), found.argmax(axis=1), -1)


def recall_at(ranks: np.ndarray, ks: list[int]) -> dict[str, float]:
    """Share of known matches found within the first k, for each k."""
    return {f"recall_at_{k}": float(np.mean((ranks >= 0) & (ranks < k))) if len(ranks) else 0.0 for k in ks}


def overlap_at(approximate: np.ndarray, exact: np.ndarray, k: int) -> float:
    """The approximate index's recall against exact search: share of the exact k nearest it also returns."""
    exact, approximate = exact[:, :k], approximate[:, :k]
    found = ((exact[:, :, None] == approximate[:, None, :]) & (exact[:, :, None] >= 0)).any(axis=2)
    return float(found.sum() / max((exact >= 0).sum(), 1))
