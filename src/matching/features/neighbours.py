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

from matching.data.cleaning import unordered_key
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
    pair_ids: list[np.ndarray], known: np.ndarray, columns: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """For each side's product (`pair_ids`: variantid1 and variantid2) and each similarity in SCORES:
    the gap to the best of the product's other pairs and the pair's rank among them; and each side's
    number of pairs. `known`: pairs whose products are both known (the others get NaN, as in the other
    groups)."""
    n_pairs = len(pair_ids[0])
    product = np.concatenate(pair_ids)
    out: dict[str, np.ndarray] = {}
    for name in (s for s in SCORES if s in columns):
        own = columns[name].astype(np.float64)
        score = np.concatenate([own, own])
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


def ranked_alone(
    pair_ids: list[np.ndarray], known: np.ndarray, columns: dict[str, np.ndarray], candidates: pd.DataFrame
) -> dict[str, np.ndarray]:
    """The columns of `neighbour_group` for each pair ranked among `candidates` alone, as if it were
    the only pair featured with them: the same features for a pair whichever pairs come with it. A
    candidate that repeats the pair (either orientation) is the pair itself, so it is left out."""
    theirs_ids = [candidates[k].to_numpy(np.int64) for k in KEYS]
    groups, group_of = np.unique(np.concatenate(theirs_ids), return_inverse=True)
    # Products the candidates lack fall in an empty group past the last.
    sizes = np.r_[np.bincount(group_of, minlength=len(groups)), 0]
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    row_group = []
    for products in pair_ids:
        at = np.searchsorted(groups, products)
        row_group.append(
            np.where(groups[np.minimum(at, len(groups) - 1)] == products, at, len(groups)) if len(groups) else at
        )
    # The candidate row each pair repeats (-1: none); the features stage saves each unordered pair once.
    repeated = unordered_key(*theirs_ids).get_indexer(unordered_key(*pair_ids))
    is_repeat = repeated >= 0
    out: dict[str, np.ndarray] = {}
    for name in (s for s in SCORES if s in columns):
        if name not in candidates:
            raise ValueError(f"the candidate pairs lack {name}; rerun the features stage that saved them")
        # Compared in the saved precision, so that a test pair scored anew ranks as in the pipeline.
        own = columns[name].astype(np.float32).astype(np.float64)
        own_value = np.nan_to_num(own, nan=-np.inf)
        their_value = np.nan_to_num(np.tile(candidates[name].to_numpy(np.float64), 2), nan=-np.inf)
        # A group's count above a value: a search over (group, value code) keys, both sides coded together.
        values, code = np.unique(np.concatenate([their_value, own_value]), return_inverse=True)
        width = len(values) + 1
        keys = np.sort(group_of * width + code[: len(their_value)])
        own_code = code[len(their_value) :]
        ranked = their_value[np.lexsort((-their_value, group_of))]
        top = np.r_[ranked, -np.inf][starts]
        second = np.where(sizes > 1, np.r_[ranked, -np.inf, -np.inf][starts + 1], -np.inf)
        saved = np.where(is_repeat, their_value[np.maximum(repeated, 0)], -np.inf)
        for side, group in enumerate(row_group):
            above = np.searchsorted(keys, (group + 1) * width, "left") - np.searchsorted(
                keys, group * width + own_code, "right"
            )
            above -= is_repeat & (saved > own_value)
            best = np.where(is_repeat & (saved >= top[group]), second[group], top[group])
            missing = np.isnan(own)
            out[f"nbr_{name}_gap{side + 1}"] = np.where(
                missing | ~np.isfinite(best), np.nan, own_value - np.where(np.isfinite(best), best, 0)
            )
            out[f"nbr_{name}_rank{side + 1}"] = np.where(missing, np.nan, above + 1)
    for side, group in enumerate(row_group):
        out[f"nbr_pairs{side + 1}"] = np.where(known, sizes[group] + 1 - is_repeat, np.nan)
    return {name: values.astype(np.float32) for name, values in out.items()}
