"""Cleaning the pairs: test pairs out of train, repeats collapsed, contradictions and self pairs dropped,
sampling; test pairs made distinct for scoring and the scores given back to every test row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from matching.data.ids import contains
from matching.errors import DataError, StageError


def unordered_key(left: np.ndarray, right: np.ndarray) -> pd.MultiIndex:
    """A key that is the same for (a, b) and (b, a)."""
    return pd.MultiIndex.from_arrays([np.minimum(left, right), np.maximum(left, right)])


def clean_train_pairs(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Drop self pairs and test pairs (either orientation), collapse repeated pairs, drop contradicting ones."""
    self_pair = (train.variantid1 == train.variantid2).to_numpy()
    train = train[~self_pair]
    train_key = unordered_key(train.variantid1.to_numpy(), train.variantid2.to_numpy())
    test_key = unordered_key(test.variantid1.to_numpy(), test.variantid2.to_numpy())
    in_test = train_key.isin(test_key)
    train, train_key = train[~in_test], train_key[~in_test]

    labels = train.groupby([train_key.get_level_values(0), train_key.get_level_values(1)])["target"]
    contradicting = (labels.transform("nunique") > 1).to_numpy()
    repeated = train_key.duplicated(keep="first")
    kept = train[~contradicting & ~repeated].reset_index(drop=True)
    counts = {
        "self_pairs_dropped_from_train": int(self_pair.sum()),
        "test_pairs_dropped_from_train": int(in_test.sum()),
        "repeated_pairs_collapsed": int((repeated & ~contradicting).sum()),
        "contradicting_pairs_dropped": int(contradicting.sum()),
    }
    return kept, counts


def sample_pairs(pairs: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    if not 0 < fraction <= 1:
        raise DataError(f"params.yaml: data.sample is {fraction}; use a fraction in (0, 1]")
    if fraction == 1:
        return pairs
    return pairs.sample(frac=fraction, random_state=seed).sort_index().reset_index(drop=True)


def check_known_ids(
    pairs: pd.DataFrame,
    known: np.ndarray,
    label: str,
    fix: str = "that is not in attributes.parquet; use product files from the same archive as the pairs",
) -> None:
    """Every id of the pairs among `known`, or a one-line refusal naming the first unknown one and `fix`."""
    known = np.sort(known)
    for column in ("variantid1", "variantid2"):
        unknown = ~contains(known, pairs[column].to_numpy())
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise DataError(
                f"{label}: column {column} names product {pairs[column].iat[row]} at row {row} "
                f"({int(unknown.sum())} rows in all) {fix}"
            )


def check_both_classes(train: pd.DataFrame, label: str) -> None:
    """The matchers, the stacker and the metric need matching and non-matching train pairs."""
    classes = np.unique(train["target"].to_numpy())
    if len(classes) < 2:
        raise DataError(
            f"{label}: every train pair left after cleaning and sampling has target {int(classes[0])}; "
            "the matchers need both 0 and 1: use the whole train file or raise data.sample"
        )


def distinct_test_pairs(test: pd.DataFrame) -> pd.DataFrame:
    """The pairs to score: each pair once whatever its orientation or repeats, self pairs left out (a
    product matches itself). A pair keeps its orientation unless the rows give it both ways, then it
    is scored as (smaller id, larger id): which pairs are scored, and how, never depends on row order."""
    left, right = test.variantid1.to_numpy(np.int64), test.variantid2.to_numpy(np.int64)
    key = unordered_key(left, right)
    low, high = key.get_level_values(0).to_numpy(), key.get_level_values(1).to_numpy()
    both_ways = pd.Series(left < right).groupby([low, high]).transform("nunique").to_numpy() > 1
    keep = ~key.duplicated(keep="first") & (left != right)
    return pd.DataFrame(
        {
            "variantid1": np.where(both_ways, low, left)[keep],
            "variantid2": np.where(both_ways, high, right)[keep],
        }
    )


def scores_of_rows(test: pd.DataFrame, scored: pd.DataFrame) -> np.ndarray:
    """Every test row's score from the distinct pairs' scores (`scored`: variantid1, variantid2,
    score), whatever the row's orientation; a self pair scores 1. NaN where a pair was not scored."""
    rows = unordered_key(test.variantid1.to_numpy(), test.variantid2.to_numpy())
    known = pd.Series(
        scored["score"].to_numpy(), index=unordered_key(scored.variantid1.to_numpy(), scored.variantid2.to_numpy())
    )
    scores = known.reindex(rows).to_numpy(np.float64, copy=True)
    scores[(test.variantid1 == test.variantid2).to_numpy()] = 1.0
    return scores


PROBABILITY_SLACK = 1e-6  # float rounding a score may carry past [0, 1]


def submission(pairs: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Every row of `pairs` with its pair's score (`scores`: the distinct pairs' ids and score) as
    `target`, a probability: a repeated row or the other orientation the same score, a self pair 1."""
    row_scores = scores_of_rows(pairs, scores)
    if np.isnan(row_scores).any():
        row = int(np.flatnonzero(np.isnan(row_scores))[0])
        raise StageError(f"pair row {row} has no score: the scores are older than the pairs; rerun `dvc repro`")
    outside = (row_scores < -PROBABILITY_SLACK) | (row_scores > 1 + PROBABILITY_SLACK)
    if outside.any():  # a model gave something other than a probability: a bug to see, not to clip away
        row = int(np.flatnonzero(outside)[0])
        raise StageError(
            f"pair row {row} scored {float(row_scores[row])!r}, not a probability ({int(outside.sum())} rows in all); "
            "rerun `dvc repro` and report it if it stays"
        )
    # Float rounding may take a mean of probabilities a hair past 0 or 1.
    return pairs[["variantid1", "variantid2"]].reset_index(drop=True).assign(target=np.clip(row_scores, 0.0, 1.0))


def test_pair_counts(test: pd.DataFrame) -> dict:
    """What the data report says of the test rows: repeats, both orientations, self pairs."""
    left, right = test.variantid1.to_numpy(), test.variantid2.to_numpy()
    key = unordered_key(left, right)
    oriented = pd.MultiIndex.from_arrays([left, right])
    distinct_oriented = oriented[~oriented.duplicated()]
    both = pd.Series(
        1, index=unordered_key(distinct_oriented.get_level_values(0), distinct_oriented.get_level_values(1))
    )
    return {
        "rows": len(test),
        "distinct_pairs_scored": int((~key.duplicated() & (left != right)).sum()),
        "rows_repeating_a_pair": int(oriented.duplicated().sum()),
        "pairs_in_both_orientations": int((both.groupby(level=[0, 1]).size() > 1).sum()),
        "self_pairs_scored_1": int((left == right).sum()),
    }
