"""Feature group `neighbours`: how a pair's similarity compares with the product's other candidate pairs.

A product usually has one match among its candidates, so "is this the most similar of the
product's pairs, and by how much" says more than the similarity alone. A product's candidates are
the pairs where it appears on either side, among the pairs featured together and the `candidates`
given beside them (never their targets): the features stage features train and test pairs together;
new pairs are featured with the training pairs as candidates (their similarities, saved by the
features stage), so that a test file scored anew sees what the pipeline saw. Ranks depend on the
values alone, never on the order of the pairs. Computed from the other groups' columns, so it runs last.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from matching.features.columns import KEYS

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
    pair_ids: list[np.ndarray],
    known: np.ndarray,
    columns: dict[str, np.ndarray],
    candidates: pd.DataFrame | None = None,
) -> dict[str, np.ndarray]:
    """For each side's product (`pair_ids`: variantid1 and variantid2) and each similarity in SCORES:
    the gap to the best of the product's other pairs and the pair's rank among them; and each side's
    number of pairs. `known`: pairs whose products are both known (the others get NaN, as in the other
    groups); `candidates`: more pairs (KEYS and the SCORES columns) that count among a product's pairs."""
    n_pairs = len(pair_ids[0])
    extra = candidates if candidates is not None else pd.DataFrame({k: np.empty(0, np.int64) for k in KEYS})
    product = np.concatenate([*pair_ids, *(extra[k].to_numpy(np.int64) for k in KEYS)])
    out: dict[str, np.ndarray] = {}
    for name in (s for s in SCORES if s in columns):
        if candidates is not None and name not in candidates:
            raise ValueError(f"the candidate pairs lack {name}; rerun the features stage that saved them")
        own = columns[name].astype(np.float64)
        theirs = candidates[name].to_numpy(np.float64) if candidates is not None else np.empty(0)
        score = np.concatenate([own, own, theirs, theirs])
        other, rank = best_of_others(product, score)
        missing = np.isnan(score)
        for side in (0, 1):
            part = slice(side * n_pairs, (side + 1) * n_pairs)
            out[f"nbr_{name}_gap{side + 1}"] = np.where(missing[part], np.nan, score[part] - other[part])
            out[f"nbr_{name}_rank{side + 1}"] = np.where(missing[part], np.nan, rank[part])
    _, index, counts = np.unique(product, return_inverse=True, return_counts=True)
    for side in (0, 1):
        out[f"nbr_pairs{side + 1}"] = np.where(known, counts[index[side * n_pairs : (side + 1) * n_pairs]], np.nan)
    return {name: values.astype(np.float32) for name, values in out.items()}
