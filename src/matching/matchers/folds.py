"""Validation folds. `products` (the default): pairs grouped by connected components of the pair
graph, so no product sits in two folds. `pairs`: pairs dealt to folds at random, for data whose
test pairs share products with the train pairs (the real-offer benchmarks); validation then
mirrors that test, and the out-of-fold F1 threshold transfers to it."""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import GroupKFold

from matching.data.ids import distinct_ids
from matching.errors import DataError


def pair_components(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Component label of each pair: pairs that share a product, directly or through others, share it."""
    ids, codes = np.unique(np.concatenate([left, right]), return_inverse=True)
    a, b = codes[: len(left)], codes[len(left) :]
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(len(ids), len(ids)))
    _, label = connected_components(graph, directed=False)
    return label[a]


def product_disjoint_folds(left: np.ndarray, right: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold number of each pair, such that no product sits in two folds."""
    groups = pair_components(left, right)
    n_groups = len(distinct_ids(groups))
    if n_groups < n_folds:
        raise DataError(
            f"train pairs form {n_groups} connected groups of products, fewer than "
            f"train.n_folds={n_folds}; lower train.n_folds or use more pairs"
        )
    fold = np.empty(len(left), dtype=np.int16)
    splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for number, (_, valid) in enumerate(splitter.split(left, groups=groups)):
        fold[valid] = number
    return fold


FOLDINGS = ("products", "pairs")


def make_folds(left: np.ndarray, right: np.ndarray, n_folds: int, seed: int, folding: str = "products") -> np.ndarray:
    if folding == "products":
        return product_disjoint_folds(left, right, n_folds, seed)
    if folding == "pairs":
        return (np.random.default_rng(seed).permutation(len(left)) % n_folds).astype(np.int16)
    raise ValueError(f"unknown folding {folding!r}; use one of {', '.join(FOLDINGS)}")
