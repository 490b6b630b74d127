"""Bad input, each kind on a corrupted copy of the tiny demo, through the real stage command:
one line naming the file, the column and the first bad row, exit status 2, earlier outputs intact.
What can be repaired safely is repaired and counted in the data report instead."""

import json
import re
import shutil
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import LAYOUT
from matching.stages.prepare import prepare

OUTPUTS = [LAYOUT.train_pairs, LAYOUT.test_pairs, LAYOUT.products, LAYOUT.data_report, LAYOUT.missing_plot]


@pytest.fixture(scope="module")
def prepared_once(tmp_path_factory, demo_tables):
    """A working folder where `prepare` already ran on good data (the 'earlier outputs')."""
    import yaml

    from conftest import REPO
    from matching.stages.generate_demo import write_tables

    root = tmp_path_factory.mktemp("prepared")
    (root / "params.yaml").write_text((REPO / "params.yaml").read_text())
    write_tables(demo_tables, root / "data" / "demo")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        seed = int(yaml.safe_load((root / "params.yaml").read_text())["seed"])
        prepare(root / "data" / "demo", sample=1.0, seed=seed, layout=LAYOUT)
    return root


@pytest.fixture
def repo_copy(prepared_once, tmp_path, monkeypatch):
    root = tmp_path / "repo"
    shutil.copytree(prepared_once, root)
    monkeypatch.chdir(root)
    return root


def run_prepare():
    return subprocess.run([sys.executable, "-m", "matching.stages.prepare"], capture_output=True, text=True)


def snapshot():
    return {path: path.read_bytes() for path in OUTPUTS}


def raw(name):
    return LAYOUT.demo_raw / f"{name}.parquet"


def edit_column(name, column, change, type_=None):
    """Rewrite one column of a raw file through `change(list) -> list`."""
    table = pq.read_table(raw(name))
    values = change(table.column(column).to_pylist())
    index = table.schema.get_field_index(column)
    pq.write_table(
        table.set_column(index, column, pa.array(values, type_ or table.schema.field(column).type)), raw(name)
    )


def set_item(row, value):
    def change(values):
        values[row] = value(values[row]) if callable(value) else value
        return values

    return change


def first_row_with_extra_photos():
    return next(
        i for i, e in enumerate(pq.read_table(raw("resnet")).column("pic_embeddings_resnet_v1").to_pylist()) if e
    )


def drop_files():
    raw("resnet").unlink()
    raw("test").unlink()


def not_parquet():
    raw("attributes").write_text("variantid,categories\n1,{}\n")


def drop_column():
    pq.write_table(pq.read_table(raw("train")).drop_columns(["target"]), raw("train"))


def rename_column():
    table = pq.read_table(raw("text_and_bert"))
    pq.write_table(table.rename_columns(["variantid", "title", "description", "name_bert_64"]), raw("text_and_bert"))


def empty_train():
    pq.write_table(pq.read_table(raw("train")).slice(0, 0), raw("train"))


def unrelated_pairs():
    table = pq.read_table(raw("train"))
    for side, column in enumerate(("variantid1", "variantid2")):
        ids = [7 + i + side * table.num_rows for i in range(table.num_rows)]
        table = table.set_column(table.schema.get_field_index(column), column, pa.array(ids, pa.int64()))
    pq.write_table(table, raw("train"))


def wide_photo():
    row = first_row_with_extra_photos()
    edit_column("resnet", "pic_embeddings_resnet_v1", set_item(row, lambda photos: [photos[0] + [0.5]] + photos[1:]))


def invalid_utf8_name():
    table = pq.read_table(raw("text_and_bert"))
    names = [name.encode() for name in table.column("name").to_pylist()]
    names[3] = b"\xd0\x9a\xff broken"  # a Cyrillic letter, then a byte no UTF-8 text holds
    broken = pa.array(names, pa.binary()).view(pa.string())
    pq.write_table(table.set_column(table.schema.get_field_index("name"), "name", broken), raw("text_and_bert"))


def corrupt_page():
    """2,000 zeroed bytes inside the extra photos' first data page; the footer stays intact."""
    column = pq.ParquetFile(raw("resnet")).metadata.row_group(0).column(2)
    data = bytearray(raw("resnet").read_bytes())
    start = column.data_page_offset + column.total_compressed_size // 2
    data[start : start + 2000] = bytes(2000)
    raw("resnet").write_bytes(bytes(data))


def one_class():
    edit_column("train", "target", lambda targets: [1] * len(targets))


BAD_INPUTS = {
    "a file missing": (drop_files, r"missing test\.parquet, resnet\.parquet \(looked in .*data/demo\)"),
    "not parquet": (not_parquet, r"attributes\.parquet: not a readable parquet file"),
    "a column missing": (drop_column, r"train\.parquet: missing column target \(has variantid1, variantid2\)"),
    "a column renamed": (rename_column, r"text_and_bert\.parquet: missing column name \(has .*title"),
    "ids duplicated": (
        lambda: edit_column("attributes", "variantid", lambda ids: ids[:9] + [ids[8]] + ids[10:]),
        r"attributes\.parquet: column variantid repeats id \d+ \(first at row 8, again at row 9\)",
    ),
    "a pair naming an unknown id": (
        lambda: edit_column("train", "variantid2", set_item(7, 1)),
        r"train\.parquet: column variantid2 names product 1 at row 7",
    ),
    "a target of 2": (
        lambda: edit_column("train", "target", set_item(4, 2)),
        r"train\.parquet: column target is 2 at row 4; targets must be 0 or 1",
    ),
    "a target of -1": (lambda: edit_column("train", "target", set_item(0, -1)), r"column target is -1 at row 0"),
    "a null target": (lambda: edit_column("train", "target", set_item(3, None)), r"column target is null at row 3"),
    "an embedding of 63 floats": (
        lambda: edit_column("text_and_bert", "name_bert_64", set_item(5, lambda v: v[:63])),
        r"text_and_bert\.parquet.*name_bert_64 has 63 floats at row 5, expected 64",
    ),
    "a main photo of 129 floats": (
        lambda: edit_column("resnet", "main_pic_embeddings_resnet_v1", set_item(6, lambda main: [main[0] + [0.0]])),
        r"main_pic_embeddings_resnet_v1 has a photo of 129 floats at row 6, expected 128",
    ),
    "an infinite value in an embedding": (
        lambda: edit_column("text_and_bert", "name_bert_64", set_item(2, lambda v: [float("inf")] + v[1:])),
        r"column name_bert_64 holds an infinite value at row 2",
    ),
    "a main photo array with zero vectors": (
        lambda: edit_column("resnet", "main_pic_embeddings_resnet_v1", set_item(4, [])),
        r"main_pic_embeddings_resnet_v1 holds 0 photos at row 4, expected one",
    ),
    "extra photos of the wrong width": (wide_photo, r"pic_embeddings_resnet_v1 has a photo of 129 floats at row \d+"),
    "categories not JSON": (
        lambda: edit_column("attributes", "categories", set_item(3, "{1: EPG")),
        r"attributes\.parquet: column categories is not JSON at row \d+",
    ),
    "attributes JSON of the wrong shape": (
        lambda: edit_column("attributes", "characteristic_attributes_mapping", set_item(2, '{"Бренд": "Tefal"}')),
        r"characteristic_attributes_mapping at row \d+ is dict JSON, expected an object of lists of strings",
    ),
    "an empty train file": (empty_train, r"train\.parquet: has no rows"),
    "pairs with no products in common": (
        unrelated_pairs,
        r"train\.parquet: column variantid1 names product 7 at row 0",
    ),
    "ids repeated in the photo file": (
        lambda: edit_column("resnet", "variantid", lambda ids: ids[:9] + [ids[8]] + ids[10:]),
        r"resnet\.parquet: column variantid repeats id \d+ \(first at row 8, again at row 9\)",
    ),
    "attribute values that are numbers": (
        lambda: edit_column("attributes", "characteristic_attributes_mapping", set_item(2, '{"Вес": [500]}')),
        r"characteristic_attributes_mapping at row \d+ is dict JSON, expected an object of lists of strings",
    ),
    "attribute values that are objects": (
        lambda: edit_column("attributes", "characteristic_attributes_mapping", set_item(1, '{"Цвет": [{"a": 1}]}')),
        r"characteristic_attributes_mapping at row \d+ is dict JSON, expected an object of lists of strings",
    ),
    "a name that is not UTF-8": (
        invalid_utf8_name,
        r"text_and_bert\.parquet: column name is not valid UTF-8 at row 3 \(b'\\xd0\\x9a\\xff broken'\)",
    ),
    "a corrupted page": (corrupt_page, r"resnet\.parquet: a corrupt page \(.+\); replace the file with the original"),
    "a train file of one class": (
        one_class,
        r"train\.parquet: every train pair left after cleaning and sampling has target 1; the matchers need both",
    ),
    "a text column that is not strings": (
        lambda: edit_column("text_and_bert", "name", lambda names: list(range(len(names))), pa.int64()),
        r"text_and_bert\.parquet: column name has type int64, expected strings",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_is_refused_in_one_line_and_earlier_outputs_stay(repo_copy, kind):
    corrupt, message = BAD_INPUTS[kind]
    before = snapshot()
    corrupt()
    result = run_prepare()
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert snapshot() == before
    assert not list(LAYOUT.prepared.glob(".*.tmp")) and not list(LAYOUT.metrics.glob(".*.tmp"))


def test_nan_inside_embeddings_is_repaired_and_counted(repo_copy):
    edit_column("text_and_bert", "name_bert_64", set_item(1, lambda v: [float("nan")] + v[1:]))
    row = first_row_with_extra_photos()
    edit_column("resnet", "pic_embeddings_resnet_v1", set_item(row, lambda photos: [[float("nan")] * 128] + photos))
    edit_column("resnet", "main_pic_embeddings_resnet_v1", set_item(0, lambda main: [[float("nan")] + main[0][1:]]))
    result = run_prepare()
    assert result.returncode == 0, result.stderr
    report = json.loads(LAYOUT.data_report.read_text())
    assert report["repaired"]["name_bert_64_with_nan_made_missing"] == 1
    assert report["repaired"]["photos_with_nan_dropped"] == 2
    assert report["repaired"]["null_descriptions_left_missing"] > 0


def test_self_pairs_repeats_and_both_orientations_are_repaired_and_counted(repo_copy):
    train, test = pq.read_table(raw("train")).to_pandas(), pq.read_table(raw("test")).to_pandas()
    train.loc[0, "variantid2"] = train.loc[0, "variantid1"]  # a product paired with itself
    reversed_pair = test.iloc[[1]].rename(columns={"variantid1": "variantid2", "variantid2": "variantid1"})
    self_pair = test.iloc[[2]].assign(variantid2=test.variantid1.iloc[2])
    test = pd.concat([test] + [test.iloc[[0]]] * 5 + [reversed_pair, self_pair], ignore_index=True)
    pq.write_table(pa.Table.from_pandas(train, preserve_index=False), raw("train"))
    pq.write_table(pa.Table.from_pandas(test, preserve_index=False), raw("test"))
    result = run_prepare()
    assert result.returncode == 0, result.stderr
    report = json.loads(LAYOUT.data_report.read_text())
    assert report["cleaning"]["self_pairs_dropped_from_train"] == 1
    assert report["test_rows"] == {
        "rows": len(test),
        "distinct_pairs_scored": len(test) - 7,
        "rows_repeating_a_pair": 5,
        "pairs_in_both_orientations": 1,
        "self_pairs_scored_1": 1,
    }
    prepared = pd.read_parquet(LAYOUT.train_pairs)
    assert not (prepared.variantid1 == prepared.variantid2).any()
    assert len(pd.read_parquet(LAYOUT.test_pairs)) == len(test), "every test row stays, to be scored"
