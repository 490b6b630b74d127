"""Photo vectors: the main photo, and the extra photos pooled to one vector.

Extra photos (0 to 16 ResNet vectors a product) become three things: a PCA of each product's
photo set down to one component (photos -> 1, sign fixed so the run is deterministic), their
mean, and their count. A product without extra photos gets NaN rows and a count of 0. Every
product's photo set is kept too, unit length in float16, for the photo features.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO, NamedTuple

import numpy as np
import pyarrow as pa

from matching.data.contract import EXTRA_PHOTOS as EXTRA
from matching.data.contract import MAIN_PHOTO as MAIN
from matching.data.contract import PHOTO_DIM, photo_sets
from matching.data.ids import positions
from matching.npz import Stream
from matching.parallel import ordered_map


def pool_photo_sets(offsets: np.ndarray, photos: np.ndarray) -> dict[str, np.ndarray]:
    """PCA-to-one, mean and count of each product's photo set; products are grouped by set size
    so that each group is one batched SVD instead of a loop over products."""
    counts = np.diff(offsets)
    n, dim = len(counts), photos.shape[1]
    pca = np.full((n, dim), np.nan, dtype=np.float32)
    mean = np.full((n, dim), np.nan, dtype=np.float32)
    for k in np.unique(counts[counts > 0]):
        rows = np.flatnonzero(counts == k)
        stack = photos[offsets[rows][:, None] + np.arange(k)]  # (m, k, dim)
        mean[rows] = stack.mean(axis=1)
        # Dimensions are the samples, photos the features: centre each photo over its dimensions.
        centred = stack.astype(np.float64)
        centred -= centred.mean(axis=2, keepdims=True)  # (m, k, dim)
        # The first right singular vector of the (dim, k) matrix is the top eigenvector of its k x k
        # Gram matrix: a batch of tiny eigenproblems instead of SVDs of (dim, k) matrices.
        gram = centred @ np.swapaxes(centred, 1, 2)  # (m, k, k)
        top = np.linalg.eigh(gram)[1][:, :, -1]  # (m, k), eigenvalues ascending
        # The component's weights over photos should mostly add up: flip it where they sum negative.
        top *= np.where(top.sum(axis=1) < 0, -1.0, 1.0)[:, None]
        pca[rows] = np.einsum("mkd,mk->md", centred, top).astype(np.float32)  # u * s of the SVD
    return {"extra_pca": pca, "extra_mean": mean, "extra_count": counts.astype(np.float32)}


def unit_half(photos: np.ndarray) -> np.ndarray:
    """Photos scaled to unit length in float16: all the photo features need are cosines, and the
    real photo sets (about 14 M vectors) fit in 3.6 GB this way instead of 7.2 GB."""
    norms = np.linalg.norm(photos, axis=1, keepdims=True)
    return (photos / np.maximum(norms, 1e-12)).astype(np.float16)


class BatchPhotos(NamedTuple):
    """One batch's photo vectors and its block of photo sets, ready to be placed among the products."""

    ids: np.ndarray
    has_main: np.ndarray
    main: np.ndarray  # the main photos of the products that have one
    pooled: dict[str, np.ndarray]
    counts: np.ndarray  # photos in each product's set
    first: np.ndarray  # where each product's set starts in `block`
    block: np.ndarray  # the batch's photo sets, unit length in float16, main photo first


def batch_photos(batch: tuple[str, np.ndarray, pa.Table]) -> BatchPhotos:
    """The work on one resnet batch (label, ids, table): its own alone, so batches run side by side."""
    label, batch_ids, table = batch
    main_offsets, main_photos, _ = photo_sets(table.column(MAIN), label, MAIN, single=True)
    has = np.diff(main_offsets) == 1
    extra_offsets, extra_photos = photo_sets(table.column(EXTRA), label, EXTRA, single=False)[:2]
    pooled = pool_photo_sets(extra_offsets, extra_photos)
    # Each product's set: its main photo (if any), then its extras, placed straight into the batch's block.
    extra_counts = np.diff(extra_offsets)
    counts = has.astype(np.int64) + extra_counts
    first = np.cumsum(counts) - counts
    block = np.empty((int(counts.sum()), PHOTO_DIM), dtype=np.float16)
    block[first[has]] = unit_half(main_photos)
    owner = np.repeat(np.arange(len(batch_ids)), extra_counts)
    block[first[owner] + has[owner] + np.arange(len(owner)) - extra_offsets[owner]] = unit_half(extra_photos)
    return BatchPhotos(batch_ids, has, main_photos, pooled, counts, first, block)


def photo_vectors(
    batches: Iterable[tuple[str, np.ndarray, pa.Table]], wanted_ids: np.ndarray, spill: BinaryIO
) -> tuple[dict[str, np.ndarray], dict]:
    """Per-product photo vectors aligned to `wanted_ids` (sorted), and every photo set (main photo
    first), from the resnet file's batches cut to the wanted products (label, ids, table). Batches are
    worked on side by side (`ordered_map`) and placed in file order; outputs are allocated once and
    filled batch by batch; the photos of the sets go to `spill` (a scratch file) in file order, each
    product pointing at its own with `starts` and `counts`, so the largest output is never held in
    memory."""
    n = len(wanted_ids)
    out: dict[str, np.ndarray] = {
        name: np.full((n, PHOTO_DIM), np.nan, dtype=np.float32) for name in ("main", "extra_pca", "extra_mean")
    }
    out["extra_count"] = np.zeros(n, dtype=np.float32)
    starts, counts, has_main = np.zeros(n, np.int64), np.zeros(n, np.int32), np.zeros(n, bool)
    stored = 0
    for done in ordered_map(batch_photos, batches):
        rows = positions(wanted_ids, done.ids)
        out["main"][rows[done.has_main]] = done.main
        for name, values in done.pooled.items():
            out[name][rows] = values
        spill.write(done.block.tobytes())
        starts[rows] = stored + done.first
        counts[rows], has_main[rows] = done.counts, done.has_main
        stored += len(done.block)
    spill.seek(0)
    photos = Stream((stored, PHOTO_DIM), np.dtype(np.float16), _read_rows(spill, PHOTO_DIM, np.float16))
    sets = {"variantid": wanted_ids, "starts": starts, "counts": counts, "has_main": has_main, "photos": photos}
    return out, sets


def _read_rows(handle: BinaryIO, width: int, dtype: type, rows: int = 1 << 18) -> Iterator[np.ndarray]:
    row_bytes = width * np.dtype(dtype).itemsize
    while block := handle.read(rows * row_bytes):
        yield np.frombuffer(block, dtype=dtype).reshape(-1, width)
