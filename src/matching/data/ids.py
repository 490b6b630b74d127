"""Embedding files: named float32 matrices keyed by `variantid`, one row per product."""

from __future__ import annotations

import numpy as np


def distinct_ids(ids: np.ndarray) -> np.ndarray:
    """The sorted distinct ids, `np.unique(ids)` by one sort: NumPy from 2.3 finds the distinct values
    of an integer array with a hash table, many times slower than its vectorised sort for millions of ids."""
    ids = np.sort(np.asarray(ids).ravel())
    if len(ids) < 2:
        return ids
    return ids[np.concatenate(([True], ids[1:] != ids[:-1]))]


def positions(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row of each id in `sorted_ids`, or -1 where it is absent.

    The ids are searched in sorted order and the rows put back in theirs: a binary search for ids in
    random order misses the cache at almost every step of a catalog of millions, ids in order walk it
    once, and sorting them first costs far less than the misses it saves."""
    ids = np.asarray(ids)
    if len(sorted_ids) == 0:
        return np.full(ids.shape, -1, dtype=np.int64)
    keys = ids.ravel()
    order = None
    if len(keys) > 1 and not (keys[1:] >= keys[:-1]).all():
        order = np.argsort(keys)  # equal ids get the same row, so an unstable sort gives the same result
        keys = keys[order]
    found = np.minimum(np.searchsorted(sorted_ids, keys), len(sorted_ids) - 1)
    found = np.where(sorted_ids[found] == keys, found, -1)
    if order is not None:
        found[order] = found.copy()
    return found.reshape(ids.shape)


def contains(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """`np.isin(ids, sorted_ids)` by binary search: np.isin sorts both arrays on every call, which for
    a batch of ids against 2.25 M products costs far more than searching the sorted catalog."""
    return positions(sorted_ids, ids) >= 0
