"""The real-offers benchmark script: test labels never reach training, feature fitting or the threshold."""

import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import real_offers  # noqa: E402

pytestmark = pytest.mark.slow


def run_with_labels(tmp_path, demo_tables, labels, name):
    from matching.stages.generate_demo import write_tables

    raw, work = tmp_path / f"raw_{name}", tmp_path / f"work_{name}"
    write_tables(demo_tables, raw)
    work.mkdir()
    pq.write_table(pa.table({**demo_tables["test"].to_pydict(), "target": labels}), raw / real_offers.LABELS)
    real_offers.run_pipeline(raw, work, ["lightgbm"], {"train.n_folds": 3})
    return work


def test_labels_change_nothing_but_the_test_scores(tmp_path, demo_tables, monkeypatch):
    n = demo_tables["test"].num_rows
    rng = np.random.default_rng(0)
    first, second = rng.integers(0, 2, n), rng.integers(0, 2, n)
    work_a = run_with_labels(tmp_path, demo_tables, first, "a")
    work_b = run_with_labels(tmp_path, demo_tables, second, "b")
    for relative in (
        "data/features/train.parquet",
        "data/features/test.parquet",
        "data/scores/lightgbm/oof.parquet",
        "data/predictions/test.parquet",
    ):
        assert (work_a / relative).read_bytes() == (work_b / relative).read_bytes(), relative
    test = demo_tables["test"].to_pandas()
    scored_a = real_offers.test_scores(work_a, "lightgbm", test.assign(target=first))
    scored_b = real_offers.test_scores(work_a, "lightgbm", test.assign(target=second))
    assert scored_a["threshold"] == scored_b["threshold"] and scored_a["oof_f1"] == scored_b["oof_f1"]
    assert scored_a["test_f1"] != scored_b["test_f1"]
    # Labels are matched to the scores by pair, not by position.
    assert real_offers.test_scores(work_a, "lightgbm", test.assign(target=first).iloc[::-1]) == scored_a
    stranger = test.assign(target=first).head(1).assign(variantid2=-1)
    with pytest.raises(SystemExit, match="names pairs that test.parquet lacks"):
        real_offers.test_scores(work_a, "lightgbm", stranger)


def test_an_inner_split_holds_out_train_pairs_and_never_opens_the_test_labels(tmp_path):
    folder = tmp_path / "offers"
    folder.mkdir()
    pairs = pd.DataFrame(
        {"variantid1": np.arange(200), "variantid2": np.arange(200) + 1000, "target": np.arange(200) % 2}
    )
    pairs.to_parquet(folder / "train.parquet")
    pairs.head(5).drop(columns="target").to_parquet(folder / "test.parquet")
    (folder / "attributes.parquet").write_bytes(b"products")
    (folder / real_offers.LABELS).write_bytes(b"not parquet: reading it would fail")
    raw, held_out = real_offers.inner_split_copy(folder, tmp_path / "scratch", 0.25, seed=3)
    kept, test = pd.read_parquet(raw / "train.parquet"), pd.read_parquet(raw / "test.parquet")
    assert not (raw / real_offers.LABELS).exists() and (raw / "attributes.parquet").exists()
    assert 20 < len(test) < 80 and "target" not in test
    assert test.equals(held_out.drop(columns="target"))
    assert pd.concat([kept, held_out]).sort_values("variantid1").reset_index(drop=True).equals(pairs)
    _, again = real_offers.inner_split_copy(folder, tmp_path / "scratch_again", 0.25, seed=3)
    assert again.equals(held_out)


def test_catalog_matching_counts_each_kept_pair_once_and_unlabelled_ones_as_wrong():
    import retrieval_real_offers

    known = pd.DataFrame({"query_id": [1, 2, 3, 4], "match_id": [2, 1, 4, 3]})  # matches 1-2 (test) and 3-4 (train)
    test_known = known.head(2)
    kept = pd.DataFrame({"query_id": [1, 2, 3, 5], "candidate_id": [2, 1, 4, 6]})  # 1-2 twice, 3-4, 5-6 unlabelled
    figures = retrieval_real_offers.kept_pairs_figures(kept, known, test_known)
    assert figures["kept"] == 3 and figures["precision"] == pytest.approx(2 / 3) and figures["recall"] == 1.0
    assert figures["f1"] == pytest.approx(0.8)
    missed = retrieval_real_offers.kept_pairs_figures(kept.tail(2), known, test_known)
    assert missed["recall"] == 0.0 and missed["precision"] == 0.5
