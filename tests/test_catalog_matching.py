"""Catalog matching's parts: labels of retrieved candidates, features that depend on the query alone,
and the decision rules with the F1 they are chosen on."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from matching.retrieval.calibration import CalibrationSplit, kept_pairs_f1
from matching.retrieval.candidate_model import labelled, query_neighbourhood
from matching.retrieval.decisions import best_kept_f1, decided, is_best, is_mutual_best, rule_figures
from matching.scoring.catalog import table_rows


def test_a_candidate_keeps_its_pairs_label_in_either_orientation_and_an_unlabelled_one_counts_as_different():
    candidates = pd.DataFrame({"query_id": [1, 1, 2, 3], "candidate_id": [2, 4, 1, 9]})
    pairs = pd.DataFrame({"variantid1": [2, 4], "variantid2": [1, 1], "target": [1, 0]})
    target, known = labelled(candidates, pairs)
    assert target.tolist() == [1, 0, 1, 0] and known.tolist() == [True, True, True, False]


def test_a_querys_neighbourhood_features_depend_on_its_own_candidates_alone():
    query = np.array([7, 7, 7, 8, 8])
    score = {"sim": np.array([0.9, 0.5, np.nan, 0.4, 0.4])}
    both = query_neighbourhood(query, score)
    assert both["query_sim_rank"][:2].tolist() == [1, 2] and np.isnan(both["query_sim_rank"][2])
    assert both["query_sim_gap"][:2] == pytest.approx([0.4, -0.4]) and both["query_sim_rank"][3:].tolist() == [1, 1]
    alone = query_neighbourhood(query[:3], {"sim": score["sim"][:3]})  # asked without query 8
    for name, values in alone.items():
        np.testing.assert_array_equal(values, both[name][:3])


def test_best_keeps_one_candidate_a_query_and_only_at_the_threshold():
    query = np.array([1, 1, 1, 2, 2, 3])
    probability = np.array([0.6, 0.9, 0.9, 0.3, 0.2, 0.8])
    assert is_best(query, probability).tolist() == [False, True, False, True, False, True]  # a tie: the earlier row
    assert decided("best", 0.5, query, probability).tolist() == [False, True, False, False, False, True]
    assert decided("threshold", 0.5, query, probability).tolist() == [True, True, True, False, False, True]
    with pytest.raises(ValueError, match="unknown decision rule 'mutual'"):
        decided("mutual", 0.5, query, probability)


def test_mutual_best_keeps_a_querys_best_only_when_the_query_is_its_candidates_best_too():
    query = np.array([1, 1, 2, 2, 3, 3, 4])
    candidate = np.array([2, 3, 1, 3, 2, 1, 9])
    probability = np.array([0.9, 0.2, 0.8, 0.7, 0.9, 0.1, 0.9])
    # 1 and 2 pick each other; 3 picks 2, whose best is 1; 9 was never asked, so 4's pick is not mutual.
    assert is_mutual_best(query, candidate, probability).tolist() == [True, False, True, False, False, False, False]
    target = np.array([1, 0, 1, 0, 0, 0, 1])
    mutual = rule_figures("mutual", query, probability, target, positives=3, candidate_ids=candidate)
    assert mutual["precision"] == 1.0 and mutual["recall"] == pytest.approx(2 / 3)


def test_the_kept_f1_counts_every_match_retrieval_missed_and_every_unlabelled_kept_row_as_wrong():
    probability = np.array([0.9, 0.8, 0.7, 0.1])
    target = np.array([1, 0, 1, 0])
    # Keeping the first three: 2 of 3 right; recall 2 of the 4 known matches (two were never retrieved).
    figures = best_kept_f1(probability, target, positives=4)
    assert figures["threshold"] == 0.7 and figures["precision"] == pytest.approx(2 / 3)
    assert figures["recall"] == 0.5 and figures["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert best_kept_f1(probability, target, positives=2)["recall"] == 1.0
    # Each query's best row only: query 1's second match can no longer be kept.
    query = np.array([1, 1, 2, 2])
    best = rule_figures("best", query, np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 1, 0, 0]), positives=2)
    assert best["recall"] == 0.5 and best["precision"] == 1.0


def test_the_calibration_split_holds_out_whole_pairs_and_fits_on_the_rest_without_their_rows():
    rng = np.random.default_rng(0)
    left, right = rng.integers(0, 60, 200), rng.integers(60, 120, 200)
    pairs = pd.DataFrame({"variantid1": left, "variantid2": right, "target": rng.integers(0, 2, 200)})
    pairs = pd.concat([pairs, pairs.rename(columns={"variantid1": "variantid2", "variantid2": "variantid1"})])
    query, candidate = rng.integers(0, 120, 3000), rng.integers(0, 120, 3000)
    split = CalibrationSplit.draw(pairs, query, candidate, 0.25, seed=3)

    def keys(frame):
        ids = frame[["variantid1", "variantid2"]]
        return set(zip(ids.min(axis=1), ids.max(axis=1)))

    held_keys, fit_keys = keys(split.held_pairs), keys(split.fit_pairs)
    assert held_keys and fit_keys and not held_keys & fit_keys  # a pair and its reverse on one side
    assert 0.15 < len(held_keys) / len(held_keys | fit_keys) < 0.35
    row_keys = list(zip(np.minimum(query, candidate), np.maximum(query, candidate)))
    fit_products = set(split.fit_pairs.variantid1) | set(split.fit_pairs.variantid2)
    held_products = set(split.held_pairs.variantid1) | set(split.held_pairs.variantid2)
    for row, key in enumerate(row_keys):
        assert split.fit_rows[row] == (query[row] in fit_products and key not in held_keys)
        assert split.held_rows[row] == (query[row] in held_products)
    again = CalibrationSplit.draw(pairs, query, candidate, 0.25, seed=3)
    assert np.array_equal(again.fit_rows, split.fit_rows) and again.held_pairs.equals(split.held_pairs)


def test_the_calibrated_f1_counts_each_pair_once_and_recalls_only_the_held_out_matches():
    # Pair {1, 2} asked from both sides, {1, 3} a known match from the fitted pairs, {2, 4} unlabelled.
    query = np.array([1, 1, 2, 2])
    candidate = np.array([2, 3, 1, 4])
    probability = np.array([0.9, 0.8, 0.6, 0.7])
    matched = np.array([1, 1, 1, 0])
    recalled = np.array([1, 0, 1, 0])
    figures = kept_pairs_f1("threshold", query, candidate, probability, matched, recalled, positives=1)
    # The best threshold keeps {1, 2} alone (at 0.9): precision 1, recall 1; lower adds {1, 3}, then {2, 4}.
    assert figures == {"f1": 1.0, "threshold": 0.9, "precision": 1.0, "recall": 1.0}
    both = kept_pairs_f1("threshold", query, candidate, probability, matched, recalled, positives=2)
    assert both["recall"] == 0.5 and both["precision"] == 1.0
    # `best` keeps 2's likeliest candidate (4, unlabelled): {1, 2} is still kept, from 1's side.
    best = kept_pairs_f1("best", query, candidate, np.array([0.9, 0.8, 0.6, 0.7]), matched, recalled, 1)
    assert best["threshold"] == 0.9 and best["precision"] == 1.0


def test_the_stage_decides_on_held_out_pairs_with_a_model_that_never_saw_them():
    from matching.stages.train_candidates import calibrated

    class Probability:  # scores a row by its `probability` column, as a fitted model would
        def predict(self, features, category, blend):
            return features["probability"].to_numpy()

    rng = np.random.default_rng(1)
    pairs = pd.DataFrame({"variantid1": np.arange(0, 80, 2), "variantid2": np.arange(1, 80, 2)})
    pairs["target"] = rng.integers(0, 2, len(pairs))
    query = np.r_[pairs.variantid1, pairs.variantid2, pairs.variantid1]
    candidate = np.r_[pairs.variantid2, pairs.variantid1, (pairs.variantid1 + 40) % 80]
    candidates = pd.DataFrame({"query_id": query, "candidate_id": candidate})
    target, _ = labelled(candidates, pairs)
    # A match scores high, an unlabelled or negative row low: the best threshold keeps the matches alone.
    features = pd.DataFrame({"probability": np.where(target == 1, 0.8, 0.2), "category": "c"})
    seen = []

    def fit(rows, query_ids, weight):
        seen.append(rows)
        return np.zeros(len(rows)), [Probability()]

    figures = calibrated(candidates, features, target, pairs, fit, share=0.25, unlabelled_weight=1.0, seed=0)
    assert figures is not None and set(figures) == {"threshold", "best"}
    assert figures["threshold"] == {"f1": 1.0, "threshold": 0.8, "precision": 1.0, "recall": 1.0}
    split = CalibrationSplit.draw(pairs, query, candidate, 0.25, 0)
    assert len(seen) == 1 and len(seen[0]) == split.fit_rows.sum() < len(candidates)
    assert (seen[0].target.to_numpy() == target[split.fit_rows]).all()
    # Held-out pairs without a match: nothing to recall, so the stage decides out of fold.
    no_match = pairs.assign(target=0)
    assert calibrated(candidates, features, target * 0, no_match, fit, 0.25, 1.0, seed=0) is None and len(seen) == 1


def test_a_repository_trained_before_the_candidate_model_says_what_to_rerun(tmp_path):
    from matching.errors import StageError
    from matching.retrieval.candidate_model import CandidateModel

    with pytest.raises(StageError, match="no candidate model; run `dvc repro train_candidates`"):
        CandidateModel.load(tmp_path / "data" / "candidate_model")


def test_the_catalog_table_gives_the_rows_asked_whichever_record_batches_hold_them():
    sizes = [3, 4, 1, 5]
    batches = [
        pa.record_batch({"variantid": np.arange(n) + 10 * k, "name": [f"card {k}.{i}" for i in range(n)]})
        for k, n in enumerate(sizes)
    ]
    table = pa.Table.from_batches(batches)
    for rows in ([0, 2, 3, 7, 8, 12], [4, 5], [12], []):  # across batches, within one, the last row, none
        rows = np.array(rows, dtype=np.int64)
        taken = table_rows(table, rows)
        assert taken.schema == table.schema and taken.equals(table.take(pa.array(rows, type=pa.int64())))
