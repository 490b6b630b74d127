"""Feature group `neighbours`: how a pair's similarity compares with the product's other candidate pairs.

A product usually has one match among its candidates, so "is this the most similar of the
product's pairs, and by how much" says more than the similarity alone. A product's candidates are
the pairs where it appears on either side (never their targets). The features stage features the
train and test pairs together (`neighbour_group`: the competition's fixed test set is transductive);
it saves their similarities, and a new pair is ranked among those alone (`ranked_alone`), never among
the other pairs of its file: its score depends on the pair and the pipeline's pairs, so scoring a
subset of a file gives each pair its score in the whole file, and a test pair scored anew gets its
submitted score. Ranks depend on the values alone, never on the order of the pairs. Computed from the
other groups' columns, so it runs last.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from matching.data.ids import positions
from matching.features.columns import KEYS
from matching.parallel import ordered_map

# Similarities (higher: more alike) that are ranked, those of the groups that are on.
SCORES = (
    "text_name_char_tfidf_cos",
    "text_name_word_tfidf_cos",
    "text_name_token_set_ratio",
    "emb_names_vectors_cos",
    "attr_value_tfidf_cos",
    "code_in_other_text",
)


def best_of_others(product: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each (product, score) row: the best score among the product's other rows (NaN if none)
    and the row's rank among its product's rows (1: best; ties share the better rank). NaN scores
    rank after all others."""
    n = len(product)
    ordered = np.lexsort((-np.nan_to_num(score, nan=-np.inf), product))
    group, value = product[ordered], np.nan_to_num(score[ordered], nan=-np.inf)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, n])
    first = np.repeat(starts, sizes)
    top = value[first]
    second = np.where(sizes > 1, value[np.minimum(starts + 1, n - 1)], -np.inf)
    position = np.arange(n) - first
    other = np.where(position == 0, np.repeat(second, sizes), top)
    # Ties share the better rank: the first position holding the same value, within the product.
    new_value = np.r_[True, (value[1:] != value[:-1]) | (group[1:] != group[:-1])]
    rank = position - (np.arange(n) - np.maximum.accumulate(np.where(new_value, np.arange(n), 0))) + 1
    best_other, row_rank = np.empty(n), np.empty(n)
    best_other[ordered] = np.where(np.isfinite(other), other, np.nan)
    row_rank[ordered] = rank
    return best_other, row_rank


def neighbour_group(
    pair_ids: list[np.ndarray], known: np.ndarray, columns: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """For each side's product (`pair_ids`: variantid1 and variantid2) and each similarity in SCORES:
    the gap to the best of the product's other pairs and the pair's rank among them; and each side's
    number of pairs. `known`: pairs whose products are both known (the others get NaN, as in the other
    groups)."""
    n_pairs = len(pair_ids[0])
    product = np.concatenate(pair_ids)

    def ranked(name: str) -> dict[str, np.ndarray]:
        own = columns[name].astype(np.float64)
        score = np.concatenate([own, own])
        other, rank = best_of_others(product, score)
        missing = np.isnan(score)
        ranked_columns = {}
        for side in (0, 1):
            part = slice(side * n_pairs, (side + 1) * n_pairs)
            ranked_columns[f"nbr_{name}_gap{side + 1}"] = np.where(missing[part], np.nan, score[part] - other[part])
            ranked_columns[f"nbr_{name}_rank{side + 1}"] = np.where(missing[part], np.nan, rank[part])
        return ranked_columns

    out: dict[str, np.ndarray] = {}
    # One similarity per thread (its sort releases the GIL), columns in SCORES order.
    for ranked_columns in ordered_map(ranked, [s for s in SCORES if s in columns]):
        out.update(ranked_columns)
    _, index, counts = np.unique(product, return_inverse=True, return_counts=True)
    for side in (0, 1):
        out[f"nbr_pairs{side + 1}"] = np.where(known, counts[index[side * n_pairs : (side + 1) * n_pairs]], np.nan)
    return {name: values.astype(np.float32) for name, values in out.items()}


class SavedPairs:
    """The pipeline's pairs (KEYS and the SCORES columns, as the features stage saves them), grouped by
    product once, among which each new pair is ranked alone (`ranked_alone`)."""

    def __init__(self, pairs: pd.DataFrame):
        ids = [pairs[k].to_numpy(np.int64) for k in KEYS]
        products, partners = np.concatenate(ids), np.concatenate(ids[::-1])
        self.order = np.argsort(products, kind="stable")  # each product's entries side by side
        ordered = products[self.order]
        first = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) else np.empty(0, np.int64)
        self.products, self.starts = ordered[first], first
        self.sizes = np.diff(np.r_[first, len(ordered)])
        self.partners = partners[self.order]
        self.pairs = pairs

    def values(self, name: str, entry: np.ndarray) -> np.ndarray:
        """A similarity of the entries at `entry`; NaN (never above anything) as -inf."""
        if name not in self.pairs:
            raise ValueError(f"the candidate pairs lack {name}; rerun the features stage that saved them")
        pair_rows = self.order[entry] % len(self.pairs)  # an entry is one side of a saved pair
        return np.nan_to_num(self.pairs[name].to_numpy(np.float64)[pair_rows], nan=-np.inf)

    def entries(self, products: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each of `products`, its number of entries; and every entry's position and owner (the index
        into `products`), owners in order."""
        rows = positions(self.products, products)
        sizes = np.where(rows >= 0, self.sizes[np.maximum(rows, 0)] if len(self.sizes) else 0, 0)
        owner = np.repeat(np.arange(len(products)), sizes)
        start = np.where(rows >= 0, self.starts[np.maximum(rows, 0)] if len(self.starts) else 0, 0)
        return sizes, np.repeat(start - (np.cumsum(sizes) - sizes), sizes) + np.arange(len(owner)), owner


def ranked_alone(
    pair_ids: list[np.ndarray], known: np.ndarray, columns: dict[str, np.ndarray], saved: SavedPairs
) -> dict[str, np.ndarray]:
    """The columns of `neighbour_group` for each pair ranked among the `saved` pairs alone, as if it
    were the only pair featured with them: the same features for a pair whichever pairs come with it.
    A saved pair that repeats the pair (either orientation) is the pair itself, so it is left out."""
    n_pairs = len(pair_ids[0])
    sides = []
    for products, others in ((pair_ids[0], pair_ids[1]), (pair_ids[1], pair_ids[0])):
        sizes, entry, owner = saved.entries(products)
        itself = saved.partners[entry] == others[owner]
        sides.append((sizes, entry, owner, itself, np.cumsum(sizes) - sizes))
    repeats = np.bincount(sides[0][2], weights=sides[0][3], minlength=n_pairs) > 0
    out: dict[str, np.ndarray] = {}
    for name in (s for s in SCORES if s in columns):
        # Compared in the saved precision, so that a test pair scored anew ranks as in the pipeline.
        own = columns[name].astype(np.float32).astype(np.float64)
        missing = np.isnan(own)
        for side, (sizes, entry, owner, itself, first) in enumerate(sides):
            others = np.where(itself, -np.inf, saved.values(name, entry))
            above = np.bincount(owner, weights=others > own[owner], minlength=n_pairs)
            best = np.full(n_pairs, -np.inf)
            some = sizes > 0
            if len(others):
                best[some] = np.maximum.reduceat(others, first[some])
            out[f"nbr_{name}_gap{side + 1}"] = np.where(
                missing | ~np.isfinite(best), np.nan, own - np.where(np.isfinite(best), best, 0)
            )
            out[f"nbr_{name}_rank{side + 1}"] = np.where(missing, np.nan, above + 1)
    for side, (sizes, *_) in enumerate(sides):
        out[f"nbr_pairs{side + 1}"] = np.where(known, sizes + 1 - repeats, np.nan)
    return {name: values.astype(np.float32) for name, values in out.items()}
