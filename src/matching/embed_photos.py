"""Stage `embed_photos`: the main photo, and the extra photos pooled to one vector.

Extra photos (0 to 16 ResNet vectors a product) become three things: a PCA of each product's
photo set down to one component (photos -> 1, sign fixed so the run is deterministic), their
mean, and their count. A product without extra photos gets NaN rows and a count of 0.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from matching import paths, schema
from matching.embeddings import align, raw_batches_for
from matching.io import load_params, run_stage, write_arrays

MAIN, EXTRA = "main_pic_embeddings_resnet_v1", "pic_embeddings_resnet_v1"


def pool_photo_sets(offsets: np.ndarray, photos: np.ndarray) -> dict[str, np.ndarray]:
    """PCA-to-one, mean and count of each product's photo set; products are grouped by set size
    so that each group is one batched SVD instead of a loop over products."""
    counts = np.diff(offsets)
    n, dim = len(counts), photos.shape[1]
    pca = np.full((n, dim), np.nan, dtype=np.float32)
    mean = np.full((n, dim), np.nan, dtype=np.float32)
    for k in np.unique(counts[counts > 0]):
        rows = np.flatnonzero(counts == k)
        stack = photos[offsets[rows][:, None] + np.arange(k)]            # (m, k, dim)
        mean[rows] = stack.mean(axis=1)
        # Dimensions are the samples, photos the features: centre each photo over its dimensions.
        centred = np.swapaxes(stack, 1, 2).astype(np.float64)             # (m, dim, k)
        centred -= centred.mean(axis=1, keepdims=True)
        u, s, vt = np.linalg.svd(centred, full_matrices=False)
        # The component's weights over photos should mostly add up: flip it where they sum negative.
        sign = np.where(vt[:, 0, :].sum(axis=1) < 0, -1.0, 1.0)
        pca[rows] = (u[:, :, 0] * (s[:, 0] * sign)[:, None]).astype(np.float32)
    return {"extra_pca": pca, "extra_mean": mean, "extra_count": counts.astype(np.float32)}


def photo_vectors(raw_dir: Path, wanted_ids: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-product photo vectors aligned to `wanted_ids`, and every photo set (main photo first)."""
    parts: dict[str, list[np.ndarray]] = {"variantid": [np.empty(0, np.int64)]}
    set_counts, set_photos, set_main = [], [], []
    for label, batch_ids, table in raw_batches_for(raw_dir, "resnet", [MAIN, EXTRA], wanted_ids):
        main_offsets, main_photos, _ = schema.photo_sets(table.column(MAIN), label, MAIN, single=True)
        has_main = np.diff(main_offsets) == 1
        main = np.full((len(batch_ids), schema.PHOTO_DIM), np.nan, dtype=np.float32)
        main[has_main] = main_photos
        extra_offsets, extra_photos = schema.photo_sets(table.column(EXTRA), label, EXTRA, single=False)[:2]
        pooled = pool_photo_sets(extra_offsets, extra_photos)
        for name, values in {"variantid": batch_ids, "main": main, **pooled}.items():
            parts.setdefault(name, []).append(values)
        # Photo sets in CSR form: the main photo (if any) then the extras, product by product.
        extra_counts = np.diff(extra_offsets)
        owner = np.concatenate([np.flatnonzero(has_main), np.repeat(np.arange(len(batch_ids)), extra_counts)])
        order = np.argsort(owner, kind="stable")
        set_photos.append(np.concatenate([main_photos, extra_photos])[order])
        set_counts.append(has_main.astype(np.int64) + extra_counts)
        set_main.append(has_main)
    found_ids = np.concatenate(parts.pop("variantid"))
    out = {}
    for name, dim in (("main", schema.PHOTO_DIM), ("extra_pca", schema.PHOTO_DIM),
                      ("extra_mean", schema.PHOTO_DIM), ("extra_count", None)):
        shape = (0, dim) if dim else (0,)
        found = np.concatenate(parts.get(name, []) + [np.empty(shape, np.float32)])
        out[name] = align(found_ids, found, wanted_ids)
    out["extra_count"] = np.nan_to_num(out["extra_count"], nan=0.0)
    counts = np.concatenate(set_counts + [np.empty(0, np.int64)])
    sort = np.argsort(found_ids, kind="stable")
    photos = np.concatenate(set_photos + [np.empty((0, schema.PHOTO_DIM), np.float32)])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    # Sets reordered by variantid so that features can look products up by binary search.
    sorted_counts = counts[sort]
    new_offsets = np.concatenate([[0], np.cumsum(sorted_counts)]).astype(np.int64)
    index = np.repeat(starts[sort] - new_offsets[:-1], sorted_counts) + np.arange(new_offsets[-1])
    sets = {"variantid": found_ids[sort], "offsets": new_offsets,
            "photos": photos[index], "has_main": np.concatenate(set_main + [np.empty(0, bool)])[sort]}
    return out, sets


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    params = load_params()
    wanted = pd.read_parquet(paths.PRODUCTS, columns=["variantid"])["variantid"].to_numpy(np.int64)
    vectors, sets = photo_vectors(Path(params["data"]["raw_dir"]), wanted)
    write_arrays({"variantid": wanted, **vectors}, paths.embedding_file("photos"))
    write_arrays(sets, paths.PHOTO_SETS)
    print(f"embed photos: {int((~np.isnan(vectors['main'][:, 0])).sum())} of {len(wanted)} products have a main "
          f"photo, {int((vectors['extra_count'] > 0).sum())} have extra photos")


if __name__ == "__main__":
    run_stage(main)
