"""The candidate model's decision, chosen where catalog matching is measured: on held-out pairs' products.

Out-of-fold scores flatter a query's true match: folds group rows by query, so the reverse row (the
match asking for the query) sits in another fold, learnt with its label, and a threshold chosen there
is too high for a new query. Folds that keep both rows of a pair together err the other way: each
query's own rows are then learnt without its match, and the threshold falls too low.

So the decision is chosen as a test pair meets it. A share of the labelled pairs is held out, as the
test pairs are: the model is fitted on the other pairs' queries, the held-out pairs' rows left out;
the held-out pairs' products are then queries, each with all of its candidates, and each rule's
threshold is the one with the best F1 of the pairs it keeps (each unordered pair once), precision
counting every known match, recall over the held-out matches: the benchmark's end-to-end figures.
The final model is fitted on every pair and keeps that rule and threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from matching.data.cleaning import unordered_key
from matching.data.ids import contains, distinct_ids
from matching.features.columns import KEYS
from matching.retrieval.candidate_model import pair_keys
from matching.retrieval.decisions import best_kept_f1, eligible


@dataclass(frozen=True)
class CalibrationSplit:
    """The labelled pairs split into pairs to fit on and pairs held out (`share` of the unordered
    pairs, drawn by `seed`), and which candidate rows each side uses."""

    fit_pairs: pd.DataFrame
    held_pairs: pd.DataFrame
    fit_rows: np.ndarray  # candidate rows the calibration model learns: fit pairs' queries, held-out pairs left out
    held_rows: np.ndarray  # every candidate row of the held-out pairs' products asked as queries

    @classmethod
    def draw(
        cls, pairs: pd.DataFrame, query_ids: np.ndarray, candidate_ids: np.ndarray, share: float, seed: int
    ) -> CalibrationSplit:
        keys = pair_keys(pairs)
        distinct = keys.unique()
        drawn = np.random.default_rng(seed).random(len(distinct)) < share
        held = keys.isin(distinct[drawn])
        fit_pairs, held_pairs = pairs[~held], pairs[held]
        in_held_pair = unordered_key(query_ids, candidate_ids).isin(distinct[drawn])
        fit_rows = contains(distinct_ids(fit_pairs[KEYS].to_numpy(np.int64)), query_ids) & ~in_held_pair
        held_rows = contains(distinct_ids(held_pairs[KEYS].to_numpy(np.int64)), query_ids)
        return cls(fit_pairs, held_pairs, fit_rows, held_rows)

    def held_matches(self, asked: np.ndarray) -> int:
        """The held-out positive pairs (each unordered pair once) with a product among `asked`."""
        positive = self.held_pairs[self.held_pairs.target == 1]
        positive = positive[contains(np.sort(asked), positive[KEYS].to_numpy(np.int64)).any(axis=1)]
        return len(pair_keys(positive).unique())


def kept_pairs_f1(
    rule: str,
    query_ids: np.ndarray,
    candidate_ids: np.ndarray,
    probability: np.ndarray,
    matched: np.ndarray,
    recalled: np.ndarray,
    positives: int,
) -> dict[str, float]:
    """The rule at its best threshold over unordered pairs: a pair is kept when a row of it the rule
    allows reaches the threshold; precision counts `matched` pairs (every known match), recall counts
    `recalled` ones (the matches asked about) over `positives`."""
    rows = eligible(rule, query_ids, probability)
    codes, _ = pd.factorize(unordered_key(query_ids[rows], candidate_ids[rows]))
    per_pair = (
        pd.DataFrame({"probability": probability[rows], "matched": matched[rows], "recalled": recalled[rows]})
        .groupby(codes)
        .max()
    )
    return best_kept_f1(
        per_pair.probability.to_numpy(),
        per_pair.matched.to_numpy(np.float64),
        positives,
        recalled=per_pair.recalled.to_numpy(np.float64),
    )
