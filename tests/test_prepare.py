"""Validation of the raw files and cleaning of the pairs."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from matching import paths
from matching.io import DataError
from matching.prepare import clean_train_pairs, prepare, sample_pairs


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
    assert counts == {"test_pairs_dropped_from_train": 0, "repeated_pairs_collapsed": 1,
                      "contradicting_pairs_dropped": 2}


def test_sample_keeps_a_fraction_and_refuses_nonsense():
    frame = pairs([(i, i + 1, i % 2) for i in range(100)])
    assert len(sample_pairs(frame, 0.25, seed=0)) == 25
    with pytest.raises(DataError, match="data.sample"):
        sample_pairs(frame, 1.5, seed=0)


def test_prepare_writes_clean_pairs_products_and_report(raw_dir):
    prepare(raw_dir, sample=1.0, seed=0)
    train = pd.read_parquet(paths.TRAIN_PAIRS)
    test = pd.read_parquet(paths.TEST_PAIRS)
    products = pd.read_parquet(paths.PRODUCTS)
    assert not set(zip(train.variantid1, train.variantid2)) & set(zip(test.variantid2, test.variantid1))
    needed = set(train.variantid1) | set(train.variantid2) | set(test.variantid1) | set(test.variantid2)
    assert set(products.variantid) == needed
    assert products.category_2.notna().all()
    report = json.loads(paths.DATA_REPORT.read_text())
    assert report["rows"]["train_pairs"] == len(train)
    assert 0.05 < report["missing_share"]["description"] < 0.2
    assert report["positive_share"] == pytest.approx(train.target.mean())
    assert pd.read_csv(paths.MISSING_PLOT).set_index("column").loc["description", "missing_share"] > 0


def test_split_product_files_are_accepted(raw_dir):
    for name in ("attributes", "text_and_bert", "resnet"):
        table = pq.read_table(raw_dir / f"{name}.parquet")
        half = table.num_rows // 2
        pq.write_table(table.slice(0, half), raw_dir / f"{name}.parquet")
        pq.write_table(table.slice(half), raw_dir / f"{name}_test.parquet")
    prepare(raw_dir, sample=1.0, seed=0)
    assert len(pd.read_parquet(paths.PRODUCTS)) > 0


def _replace_column(path, column, values, type_=None):
    table = pq.read_table(path)
    index = table.schema.get_field_index(column)
    pq.write_table(table.set_column(index, column, pa.array(values, type_)), path)


def _corrupt_missing_file(raw):
    (raw / "resnet.parquet").unlink()
    (raw / "test.parquet").unlink()


def _corrupt_not_parquet(raw):
    (raw / "attributes.parquet").write_text("variantid,categories\n1,{}\n")


def _corrupt_renamed_column(raw):
    table = pq.read_table(raw / "text_and_bert.parquet")
    pq.write_table(table.rename_columns(["variantid", "title", "description", "name_bert_64"]),
                   raw / "text_and_bert.parquet")


def _corrupt_short_embedding(raw):
    table = pq.read_table(raw / "text_and_bert.parquet")
    vectors = table.column("name_bert_64").to_pylist()
    vectors[5] = vectors[5][:63]
    _replace_column(raw / "text_and_bert.parquet", "name_bert_64", vectors, pa.list_(pa.float32()))


def _corrupt_wide_photo(raw):
    table = pq.read_table(raw / "resnet.parquet")
    extra = table.column("pic_embeddings_resnet_v1").to_pylist()
    row = next(i for i, e in enumerate(extra) if e)
    extra[row][0] = extra[row][0] + [0.0]
    _replace_column(raw / "resnet.parquet", "pic_embeddings_resnet_v1", extra, pa.list_(pa.list_(pa.float32())))


def _corrupt_attributes_not_json(raw):
    table = pq.read_table(raw / "attributes.parquet")
    values = table.column("characteristic_attributes_mapping").to_pylist()
    values[3] = "{'Бренд': 'no json'"
    _replace_column(raw / "attributes.parquet", "characteristic_attributes_mapping", values, pa.string())


def _corrupt_unknown_id(raw):
    table = pq.read_table(raw / "train.parquet")
    ids = table.column("variantid2").to_pylist()
    ids[7] = 1
    _replace_column(raw / "train.parquet", "variantid2", ids, pa.int64())


def _corrupt_target(raw):
    table = pq.read_table(raw / "train.parquet")
    target = table.column("target").to_pylist()
    target[4] = 2
    _replace_column(raw / "train.parquet", "target", target, pa.int64())


def _corrupt_duplicate_ids(raw):
    table = pq.read_table(raw / "attributes.parquet")
    ids = table.column("variantid").to_pylist()
    ids[9] = ids[8]
    _replace_column(raw / "attributes.parquet", "variantid", ids, pa.int64())


BAD_INPUTS = {
    "missing file": (_corrupt_missing_file, r"missing test.parquet, resnet.parquet \(looked in"),
    "not parquet": (_corrupt_not_parquet, r"attributes.parquet: not a readable parquet file"),
    "renamed column": (_corrupt_renamed_column, r"text_and_bert.parquet: missing column name "),
    "embedding of 63 floats": (_corrupt_short_embedding, r"name_bert_64 has 63 floats at row 5, expected 64"),
    "photo of 129 floats": (_corrupt_wide_photo, r"pic_embeddings_resnet_v1 has a photo of 129 floats"),
    "attributes not JSON": (_corrupt_attributes_not_json, r"characteristic_attributes_mapping is not JSON at row 3"),
    "unknown id": (_corrupt_unknown_id, r"train.parquet: column variantid2 names product 1 at row 7"),
    "target of 2": (_corrupt_target, r"train.parquet: column target is 2.0 at row 4"),
    "duplicated ids": (_corrupt_duplicate_ids, r"attributes.parquet: column variantid repeats id"),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_is_refused_with_a_clear_word_and_no_output(raw_dir, kind):
    corrupt, message = BAD_INPUTS[kind]
    corrupt(raw_dir)
    with pytest.raises(DataError, match=message):
        prepare(raw_dir, sample=1.0, seed=0)
    assert not paths.PREPARED.exists() or not any(paths.PREPARED.iterdir())
    assert not paths.DATA_REPORT.exists()


def test_stage_exits_nonzero_with_one_line(raw_dir):
    _corrupt_target(raw_dir)
    result = subprocess.run([sys.executable, "-m", "matching.prepare"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "train.parquet" in result.stderr and "target" in result.stderr
