"""Pair features: pairs joined to products by `variantid`, then the chosen groups, in the pairs' order.

Pairs are joined to products by id (never by row position); an id missing from a modality gives NaN
features for that modality, not a crash. Product-level work is done once (`products.product_tables`);
each group (one module each) turns two arrays of product rows into columns with its prefix.
`neighbours` ranks the other groups' similarities, so it comes last.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from matching.data.ids import positions
from matching.features.arrays import Arrays
from matching.features.attributes import attribute_group
from matching.features.category import category_group
from matching.features.codes import code_group
from matching.features.columns import KEYS, META
from matching.features.embeddings import embedding_group
from matching.features.groups import NEIGHBOURS, PAIR_GROUPS
from matching.features.neighbours import SavedPairs, neighbour_group, ranked_alone
from matching.features.photos import photo_group
from matching.features.products import ProductTables
from matching.features.text import text_group
from matching.parallel import release_freed_memory

# The per-pair groups; `neighbours` compares a pair with the product's other pairs and runs after them.
# Each function in the order of PAIR_GROUPS (tests check each group's function lives in its own module).
GROUPS: dict[str, Callable[[list[np.ndarray], ProductTables], Arrays]] = dict(
    zip(PAIR_GROUPS, (embedding_group, category_group, attribute_group, text_group, code_group, photo_group))
)


def pair_features(
    pairs: pd.DataFrame, tables: ProductTables, groups: list[str], saved: SavedPairs | None = None
) -> pd.DataFrame:
    """Features of `pairs` from the chosen groups, in the pairs' order. `neighbours` compares each
    pair with the other rows of `pairs` that share a product or, given the `saved` pairs featured
    earlier, with those alone: each pair's features then depend on the pair, never on the other rows
    of `pairs`."""
    pairs = pairs.reset_index(drop=True)
    ids = [pairs[k].to_numpy(np.int64) for k in KEYS]
    rows = [positions(tables.ids, side) for side in ids]
    meta = pairs[[c for c in META if c in pairs]].copy()
    code = np.where(rows[0] >= 0, tables.categories["2"][np.maximum(rows[0], 0)], -1)
    names = np.append(tables.category_names["2"], "unknown").astype(object)
    meta["category"] = names[np.where(code >= 0, code, len(names) - 1)].astype(str)
    columns: Arrays = {}
    for group in (g for g in groups if g in GROUPS):
        columns.update(GROUPS[group](rows, tables))
        release_freed_memory()  # each group's temporaries, freed on its threads
    if NEIGHBOURS in groups:
        known = (rows[0] >= 0) & (rows[1] >= 0)
        if saved is None:
            columns.update(neighbour_group(ids, known, columns))
        else:
            columns.update(ranked_alone(ids, known, columns, saved))
    return pd.concat([meta, pd.DataFrame(columns).astype(np.float32)], axis=1)
