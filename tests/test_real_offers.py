"""The real-offers benchmark script: test labels never reach training, feature fitting or the threshold."""

import sys

import numpy as np
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
