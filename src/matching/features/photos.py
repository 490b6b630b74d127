"""Feature group `photos` (`photo_`): the cosine matrix between the two products' photo sets."""

from __future__ import annotations

import numpy as np

from matching.data.ids import positions
from matching.features.arrays import Arrays, loaded
from matching.features.products import ProductTables


def photo_group(rows: list[np.ndarray], tables: ProductTables, chunk_combinations: int = 500_000) -> Arrays:
    """Statistics of the cosine matrix between the two products' photo sets (main photo first), the
    main photo against the other's extra photos, and the difference in photo counts."""
    sets = loaded(tables.photo_sets)
    names = ("photo_cos_min", "photo_cos_max", "photo_cos_mean", "photo_cos_std", "photo_main_vs_other_max")
    columns = {name: np.full(len(rows[0]), np.nan, dtype=np.float32) for name in names}
    if not sets or len(sets["photos"]) == 0:
        return {**columns, "photo_count_absdiff": np.full(len(rows[0]), np.nan, dtype=np.float32)}
    ids, starts, counts, has_main = sets["variantid"], sets["starts"], sets["counts"], sets["has_main"]
    photos = sets["photos"]  # unit length, float16 (embed_photos.unit_half)
    side_rows = [np.where(r >= 0, positions(ids, tables.ids[np.maximum(r, 0)]), -1) for r in rows]
    ka = np.where(side_rows[0] >= 0, counts[np.maximum(side_rows[0], 0)], 0)
    kb = np.where(side_rows[1] >= 0, counts[np.maximum(side_rows[1], 0)], 0)
    columns["photo_count_absdiff"] = np.where(
        (side_rows[0] >= 0) & (side_rows[1] >= 0), np.abs(ka - kb), np.nan
    ).astype(np.float32)

    combos = ka * kb
    start = 0
    while start < len(combos):
        stop = start + max(1, int(np.searchsorted(np.cumsum(combos[start:]), chunk_combinations)))
        _photo_chunk(np.arange(start, min(stop, len(combos))), side_rows, ka, kb, starts, has_main, photos, columns)
        start = stop
    return columns


def _photo_chunk(chunk, side_rows, ka, kb, starts, has_main, photos, columns) -> None:
    n = (ka * kb)[chunk]
    chunk, n = chunk[n > 0], n[n > 0]
    if len(chunk) == 0:
        return
    pair = np.repeat(np.arange(len(chunk)), n)
    within = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    i, j = within // kb[chunk][pair], within % kb[chunk][pair]
    ra, rb = side_rows[0][chunk][pair], side_rows[1][chunk][pair]
    cos = np.einsum("ij,ij->i", photos[starts[ra] + i].astype(np.float32), photos[starts[rb] + j].astype(np.float32))
    first = np.concatenate([[0], np.cumsum(n)[:-1]])
    columns["photo_cos_min"][chunk] = np.minimum.reduceat(cos, first)
    columns["photo_cos_max"][chunk] = np.maximum.reduceat(cos, first)
    mean = np.add.reduceat(cos, first) / n
    columns["photo_cos_mean"][chunk] = mean
    columns["photo_cos_std"][chunk] = np.sqrt(np.maximum(np.add.reduceat(cos**2, first) / n - mean**2, 0))
    # Main photo of one side (photo 0 where it has one) against the other side's extra photos.
    cross = ((i == 0) & has_main[ra] & (j > 0)) | ((j == 0) & has_main[rb] & (i > 0))
    best = np.full(len(chunk), -np.inf)
    np.maximum.at(best, pair[cross], cos[cross])
    columns["photo_main_vs_other_max"][chunk] = np.where(np.isfinite(best), best, np.nan)
