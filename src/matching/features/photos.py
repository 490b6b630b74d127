"""Feature group `photos` (`photo_`): the cosine matrix between the two products' photo sets."""

from __future__ import annotations

from collections import deque

import numpy as np

from matching import THREADS
from matching.data.ids import positions
from matching.features.arrays import Arrays, loaded
from matching.features.products import ProductTables
from matching.parallel import ordered_map


def photo_group(rows: list[np.ndarray], tables: ProductTables, chunk_photos: int = 1 << 19) -> Arrays:
    """Statistics of the cosine matrix between the two products' photo sets (main photo first), the
    main photo against the other's extra photos, and the difference in photo counts."""
    sets = loaded(tables.photo_sets)
    names = ("photo_cos_min", "photo_cos_max", "photo_cos_mean", "photo_cos_std", "photo_main_vs_other_max")
    columns = {name: np.full(len(rows[0]), np.nan, dtype=np.float32) for name in names}
    if not sets or len(sets["photos"]) == 0:
        return {**columns, "photo_count_absdiff": np.full(len(rows[0]), np.nan, dtype=np.float32)}
    ids, starts, counts, has_main = sets["variantid"], sets["starts"], sets["counts"], sets["has_main"]
    photos = sets["photos"]  # unit length, float16 (embed_photos.unit_half)
    side_rows = list(ordered_map(lambda r: np.where(r >= 0, positions(ids, tables.ids[np.maximum(r, 0)]), -1), rows))
    ka = np.where(side_rows[0] >= 0, counts[np.maximum(side_rows[0], 0)], 0)
    kb = np.where(side_rows[1] >= 0, counts[np.maximum(side_rows[1], 0)], 0)
    columns["photo_count_absdiff"] = np.where(
        (side_rows[0] >= 0) & (side_rows[1] >= 0), np.abs(ka - kb), np.nan
    ).astype(np.float32)
    # Pairs grouped by their two set sizes: each group is one batch of (ka x 128) @ (128 x kb) products,
    # every photo read once a pair rather than once per cell of the cosine matrix.
    both = np.flatnonzero((ka > 0) & (kb > 0))
    size_key = ka[both].astype(np.int64) * (int(kb.max()) + 1) + kb[both]
    order = np.argsort(size_key, kind="stable")
    bounds = np.flatnonzero(np.diff(size_key[order])) + 1
    # Chunks side by side on THREADS threads, each writing its own pairs' rows; the photos in flight
    # together stay within chunk_photos.
    jobs = []
    for group in np.split(both[order], bounds) if len(both) else []:
        a, b = int(ka[group[0]]), int(kb[group[0]])
        step = max(1, chunk_photos // THREADS // (a + b))
        jobs += [(chunk, a, b) for chunk in np.split(group, np.arange(step, len(group), step))]

    def compare(job: tuple[np.ndarray, int, int]) -> None:
        chunk, a, b = job
        ra, rb = side_rows[0][chunk], side_rows[1][chunk]
        _photo_chunk(chunk, photos, starts[ra], starts[rb], a, b, has_main[ra], has_main[rb], columns)

    deque(ordered_map(compare, jobs), maxlen=0)
    return columns


def _photo_chunk(chunk, photos, start_a, start_b, a, b, main_a, main_b, columns) -> None:
    set_a = photos[start_a[:, None] + np.arange(a)].astype(np.float32)  # (m, a, 128)
    set_b = photos[start_b[:, None] + np.arange(b)].astype(np.float32)
    cos = (set_a @ np.swapaxes(set_b, 1, 2)).reshape(len(chunk), a * b)
    columns["photo_cos_min"][chunk] = cos.min(axis=1)
    columns["photo_cos_max"][chunk] = cos.max(axis=1)
    columns["photo_cos_mean"][chunk] = cos.mean(axis=1)
    columns["photo_cos_std"][chunk] = cos.std(axis=1)
    # Main photo of one side (photo 0 where it has one) against the other side's extra photos.
    grid = cos.reshape(len(chunk), a, b)
    best = np.full(len(chunk), -np.inf, dtype=np.float32)
    if b > 1:
        best = np.where(main_a, np.maximum(best, grid[:, 0, 1:].max(axis=1)), best)
    if a > 1:
        best = np.where(main_b, np.maximum(best, grid[:, 1:, 0].max(axis=1)), best)
    columns["photo_main_vs_other_max"][chunk] = np.where(np.isfinite(best), best, np.nan)
