"""Feature group `embeddings` (`emb_`): distances between the two products' vectors of every modality."""

from __future__ import annotations

import numpy as np

from matching.data.ids import positions
from matching.features.arrays import Arrays, in_chunks, loaded, take, vector_distances
from matching.features.products import ProductTables
from matching.parallel import ordered_map


def embedding_rows(ids: np.ndarray, rows: list[np.ndarray], product_ids: np.ndarray) -> list[np.ndarray]:
    """The row in an embedding file (its `ids`) of each pair side's product (-1: not in the file)."""
    order = np.argsort(ids, kind="stable")
    found = [positions(ids[order], product_ids[np.maximum(r, 0)]) for r in rows]
    return [np.where((f >= 0) & (r >= 0), order[np.maximum(f, 0)], -1) for f, r in zip(found, rows)]


def embedding_group(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    """Distances of every embedding of every modality; per-product scalars as min, max, |difference|.
    One modality's file is in memory at a time."""
    columns: Arrays = {}
    modalities = sorted(tables.embeddings)  # columns in one order, however the tables were built
    # Every modality's rows of each pair side first, side by side (binary searches release the GIL).
    all_sides = list(
        ordered_map(lambda m: embedding_rows(loaded(tables.embeddings[m])["variantid"], rows, tables.ids), modalities)
    )
    for modality, sides in zip(modalities, all_sides):
        arrays = loaded(tables.embeddings[modality])  # a lazy np.load archive: one matrix in memory at a time
        for name, values in arrays.items():
            if name == "variantid":
                continue
            prefix = f"emb_{modality}_{name}"
            if values.ndim == 2:
                distances = in_chunks(sides, lambda s: vector_distances(take(values, s[0]), take(values, s[1])))
                columns.update({f"{prefix}_{kind}": distance for kind, distance in distances.items()})
            else:
                a, b = take(values, sides[0]), take(values, sides[1])
                columns[f"{prefix}_min"] = np.minimum(a, b)
                columns[f"{prefix}_max"] = np.maximum(a, b)
                columns[f"{prefix}_absdiff"] = np.abs(a - b)
        if hasattr(arrays, "close"):
            arrays.close()
    return columns
