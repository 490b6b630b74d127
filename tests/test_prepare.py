"""Validation of the raw files and cleaning of the pairs."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import LAYOUT
from matching.errors import DataError, StageError
from matching.stages.prepare import clean_train_pairs, prepare, sample_pairs


def pairs(rows):
    return pd.DataFrame(rows, columns=["variantid1", "variantid2", "target"][: len(rows[0])])


def test_test_pairs_leave_train_in_either_orientation():
    train = pairs([(1, 2, 1), (4, 3, 0), (5, 6, 1)])
    test = pairs([(1, 2), (3, 4)])
    kept, counts = clean_train_pairs(train, test)
    assert kept[["variantid1", "variantid2"]].values.tolist() == [[5, 6]]
    assert counts["test_pairs_dropped_from_train"] == 2


def test_reversed_duplicates_collapse_and_contradictions_go():
    train = pairs([(1, 2, 1), (2, 1, 1), (3, 4, 0), (4, 3, 1), (5, 6, 0)])
    kept, counts = clean_train_pairs(train, pairs([(9, 10)]))
    assert kept.values.tolist() == [[1, 2, 1], [5, 6, 0]]
    assert counts == {
        "self_pairs_dropped_from_train": 0,
        "test_pairs_dropped_from_train": 0,
        "repeated_pairs_collapsed": 1,
        "contradicting_pairs_dropped": 2,
    }


def test_sample_keeps_a_fraction_and_refuses_nonsense():
    frame = pairs([(i, i + 1, i % 2) for i in range(100)])
    assert len(sample_pairs(frame, 0.25, seed=0)) == 25
    with pytest.raises(DataError, match="data.sample"):
        sample_pairs(frame, 1.5, seed=0)


def test_prepare_writes_clean_pairs_products_and_report(raw_dir):
    prepare(raw_dir, sample=1.0, seed=0)
    train = pd.read_parquet(LAYOUT.train_pairs)
    test = pd.read_parquet(LAYOUT.test_pairs)
    products = pd.read_parquet(LAYOUT.products)
    assert not set(zip(train.variantid1, train.variantid2)) & set(zip(test.variantid2, test.variantid1))
    needed = set(train.variantid1) | set(train.variantid2) | set(test.variantid1) | set(test.variantid2)
    assert set(products.variantid) == needed
    assert products.category_2.notna().all()
    report = json.loads(LAYOUT.data_report.read_text())
    assert report["rows"]["train_pairs"] == len(train)
    assert 0.05 < report["missing_share"]["description"] < 0.2
    assert report["positive_share"] == pytest.approx(train.target.mean())
    assert pd.read_csv(LAYOUT.missing_plot).set_index("column").loc["description", "missing_share"] > 0


def test_split_product_files_are_accepted(raw_dir):
    for name in ("attributes", "text_and_bert", "resnet"):
        table = pq.read_table(raw_dir / f"{name}.parquet")
        half = table.num_rows // 2
        pq.write_table(table.slice(0, half), raw_dir / f"{name}.parquet")
        pq.write_table(table.slice(half), raw_dir / f"{name}_test.parquet")
    prepare(raw_dir, sample=1.0, seed=0)
    assert len(pd.read_parquet(LAYOUT.products)) > 0


def test_each_test_pair_is_scored_once_and_every_row_gets_its_score():
    from matching.data.cleaning import distinct_test_pairs, scores_of_rows, submission

    test = pd.DataFrame({"variantid1": [1, 3, 1, 4, 1, 5, 2], "variantid2": [2, 4, 2, 3, 2, 5, 1]})
    distinct = distinct_test_pairs(test)
    assert distinct.values.tolist() == [[1, 2], [3, 4]]  # repeats, the other orientation and (5, 5) left out
    scored = distinct.assign(score=[0.25, 0.75])
    np.testing.assert_array_equal(scores_of_rows(test, scored), [0.25, 0.75, 0.25, 0.75, 0.25, 1.0, 0.25])
    frame = submission(test, scored)
    assert frame[["variantid1", "variantid2"]].equals(test) and frame.target.tolist()[:2] == [0.25, 0.75]
    with pytest.raises(StageError, match="pair row 1 has no score"):
        submission(test, scored.iloc[:1])


def test_which_pairs_are_scored_and_how_does_not_depend_on_row_order():
    from matching.data.cleaning import distinct_test_pairs

    # (9, 8) is given one way only and keeps its orientation; (1, 2) both ways becomes (smaller, larger).
    test = pd.DataFrame({"variantid1": [2, 9, 1, 2, 3], "variantid2": [1, 8, 2, 1, 3]})
    for order in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [1, 2, 0, 4, 3]):
        distinct = distinct_test_pairs(test.iloc[order])
        assert sorted(distinct.values.tolist()) == [[1, 2], [9, 8]]


def test_reading_wanted_products_skips_groups_and_keeps_every_wanted_row(tmp_path):
    # Shuffled ids over small row groups, as in the archive: statistics cannot skip, the id column can.
    from matching.data import raw

    ids = np.random.default_rng(0).permutation(np.arange(100, 400))
    table = pa.table(
        {
            "variantid": ids,
            "name": [f"n{i}" for i in ids],
            "description": ["d"] * len(ids),
            "name_bert_64": [[float(i)] * 2 for i in ids],
        }
    )
    pq.write_table(table, tmp_path / "text_and_bert.parquet", row_group_size=50)
    wanted = np.array([ids[3], ids[160], 99, 5000])  # two held, in groups 0 and 3; two absent
    rows = raw.read_product_rows(tmp_path, "text_and_bert", ("name", "name_bert_64"), wanted)
    assert rows.column_names == ["variantid", "name", "name_bert_64"]
    assert sorted(rows.column("variantid").to_pylist()) == sorted([int(ids[3]), int(ids[160])])
    assert {i: n for i, n in zip(rows.column("variantid").to_pylist(), rows.column("name").to_pylist())} == {
        int(ids[3]): f"n{ids[3]}",
        int(ids[160]): f"n{ids[160]}",
    }
    read_groups = {
        offset for _, offset, _ in raw.iter_batches(tmp_path, "text_and_bert", ["variantid"], np.sort(wanted))
    }
    assert read_groups == {0, 150}
    nothing = raw.read_product_rows(tmp_path, "text_and_bert", ("name",), np.array([1, 2]))
    assert nothing.num_rows == 0 and nothing.column_names == ["variantid", "name"]


@pytest.mark.parametrize("size", [0, 1, 2, 1000])
def test_distinct_ids_and_membership_by_sorting_agree_with_numpy(size):
    from matching.data.ids import contains, distinct_ids

    rng = np.random.default_rng(size)
    ids = rng.integers(-5, 60, size=(size, 2)).astype(np.int64)  # repeats, negatives, a 2-D pair block
    distinct = distinct_ids(ids)
    assert distinct.dtype == np.int64
    np.testing.assert_array_equal(distinct, np.unique(ids))
    asked = rng.integers(-10, 70, size=(50, 2))
    np.testing.assert_array_equal(contains(distinct, asked), np.isin(asked, ids))


@pytest.mark.parametrize("shape", [(0,), (1,), (500,), (40, 3)])
@pytest.mark.parametrize("ordered", [False, True])
def test_positions_by_sorted_search_agree_with_a_search_per_id(shape, ordered):
    from matching.data.ids import positions

    rng = np.random.default_rng(len(shape))
    catalog = np.sort(rng.choice(10_000, 300, replace=False)).astype(np.int64)
    absent = rng.integers(-5, 10_005, size=shape)  # mostly absent: below, inside and above the catalog
    asked = np.where(rng.random(shape) < 0.5, rng.choice(catalog, size=shape), absent)
    asked = np.sort(asked, axis=None).reshape(shape) if ordered else asked
    expected = np.array([np.flatnonzero(catalog == i)[0] if i in catalog else -1 for i in asked.ravel()], dtype=int)
    got = positions(catalog, asked)
    assert got.shape == asked.shape
    np.testing.assert_array_equal(got.ravel(), expected)
    np.testing.assert_array_equal(positions(catalog[:0], asked), np.full(shape, -1))


def test_pairs_naming_an_unknown_product_are_refused_with_the_first_one():
    from matching.data.cleaning import check_known_ids

    known = np.array([30, 10, 20])  # unsorted, as the attribute file holds them
    check_known_ids(pairs([(10, 30), (20, 10)]), known, "train.parquet")
    with pytest.raises(
        DataError, match=r"train.parquet: column variantid2 names product 40 at row 1 \(2 rows in all\)"
    ):
        check_known_ids(pairs([(10, 30), (20, 40), (30, 40)]), known, "train.parquet")
