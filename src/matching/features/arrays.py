"""Array helpers of the pair features: rows of products taken with NaN for unknown ones, items of
products found by offsets (CSR), shared-item counts, chunks of pairs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matching import THREADS
from matching.parallel import ordered_map

PAIR_CHUNK = 50_000  # pairs whose TF-IDF rows, attribute rows and photo cosines are held at once, on all threads


Arrays = dict[str, np.ndarray]


# arrays (a dict, or a file's arrays mapped on demand), or a loader called only while a group needs them
Source = Mapping[str, np.ndarray] | Callable[[], Mapping[str, np.ndarray]]


def loaded(source: Source | None) -> Mapping[str, np.ndarray]:
    return (source() if callable(source) else source) or {}


def take(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """values[rows] as float32 with NaN where a row is -1."""
    out = values[np.maximum(rows, 0)].astype(np.float32, copy=True)
    out[rows < 0] = np.nan
    return out


def gather(starts: np.ndarray, counts: np.ndarray, product_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For products given by row (-1: none), every (position in `product_rows`, item index) of
    their items, where product p owns items starts[p] .. starts[p] + counts[p] - 1."""
    rows = np.maximum(product_rows, 0)
    k = np.where(product_rows >= 0, counts[rows], 0).astype(np.int64)
    owner = np.repeat(np.arange(len(rows)), k)
    within = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
    return owner, np.repeat(starts[rows], k) + within


def in_chunks(rows: list[np.ndarray], compute: Callable[[list[np.ndarray]], Arrays], threads: int = 0) -> Arrays:
    """`compute` over chunks of pairs on `threads` threads (default MATCHING_THREADS), its columns put
    back together in order. The chunks in flight together hold at most PAIR_CHUNK pairs, so a thread's
    chunk is PAIR_CHUNK / threads pairs, or an equal share of fewer (the memory bound: at the real
    volume, two threads on 50,000 pairs each took the features stage past 8 GiB). A pair's features
    depend on the pair alone: any split, the same values."""
    threads = threads or THREADS
    n = max(len(rows[0]), 1)
    size = -(-min(n, PAIR_CHUNK) // threads)
    chunks = ([r[start : start + size] for r in rows] for start in range(0, n, size))
    parts = list(ordered_map(compute, chunks, threads if n > size else 1))
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def vector_distances(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Cosine similarity, euclidean and manhattan distance row by row; NaN rows stay NaN."""
    dot = np.einsum("ij,ij->i", a, b)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(norms > 0, dot / norms, np.nan)
    diff = a - b
    return {"cos": cosine, "euclidean": np.linalg.norm(diff, axis=1), "manhattan": np.abs(diff).sum(axis=1)}


@dataclass
class ItemRows:
    """Items (attribute rows, codes, colours) of every product, sorted by product: product p owns
    rows starts[p] .. starts[p+1] - 1 of `frame`."""

    frame: pd.DataFrame
    starts: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame, n_products: int) -> ItemRows:
        frame = frame.sort_values("product", kind="stable").reset_index(drop=True)
        return cls(frame, np.searchsorted(frame["product"].to_numpy(), np.arange(n_products + 1)))

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.starts)

    def of_pairs(self, product_rows: np.ndarray, columns: list[str]) -> pd.DataFrame:
        pair, index = gather(self.starts, self.counts, product_rows)
        return self.frame[columns].iloc[index].assign(pair=pair).reset_index(drop=True)


def shared_counts(rows: list[np.ndarray], items: ItemRows, item: str, value: str | None = None) -> Arrays:
    """For each pair: items (keys, codes) of each side, items shared, and shared items with equal `value`."""
    columns = [item] + ([value] if value else [])
    sides = [
        items.of_pairs(r, columns).rename(columns={value: f"{value}{s}"} if value else {}) for s, r in enumerate(rows)
    ]
    shared = sides[0].merge(sides[1], on=["pair", item])
    n_pairs = len(rows[0])
    out = {
        "a": take(items.counts.astype(np.float32), rows[0]),
        "b": take(items.counts.astype(np.float32), rows[1]),
        "shared": np.bincount(shared["pair"], minlength=n_pairs).astype(np.float32),
    }
    if value:
        equal = (shared[f"{value}0"] == shared[f"{value}1"]).to_numpy(np.float64)
        out["equal"] = np.bincount(shared["pair"], weights=equal, minlength=n_pairs).astype(np.float32)
    unknown = (rows[0] < 0) | (rows[1] < 0)
    for counts in out.values():
        counts[unknown] = np.nan
    return out


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan).astype(np.float32)


def jaccard(counts: Arrays) -> np.ndarray:
    """Shared items over the union, from `shared_counts`' counts (NaN if neither side has any)."""
    return ratio(counts["shared"], counts["a"] + counts["b"] - counts["shared"])
