"""The demo archive has the real schema, the known dirt and a signal that is not trivial."""

import json

import numpy as np
import pyarrow as pa
import pytest

from matching.demo.generator import DemoSize, generate


def test_schema_matches_the_contract(demo_tables):
    t = demo_tables
    assert t["train"].schema.names == ["variantid1", "variantid2", "target"]
    assert t["test"].schema.names == ["variantid1", "variantid2"]
    assert t["attributes"].schema.names == ["variantid", "categories", "characteristic_attributes_mapping"]
    assert t["text_and_bert"].schema.names == ["variantid", "name", "description", "name_bert_64"]
    resnet = t["resnet"]
    assert resnet.schema.field("main_pic_embeddings_resnet_v1").type == pa.list_(pa.list_(pa.float32()))
    main = resnet.column("main_pic_embeddings_resnet_v1").to_pylist()
    assert {len(m) for m in main} == {1} and {len(m[0]) for m in main} == {128}
    extra = resnet.column("pic_embeddings_resnet_v1").to_pylist()
    counts = [0 if e is None else len(e) for e in extra]
    assert any(e is None for e in extra) and max(counts) <= 16 and max(counts) > 1
    assert all(len(p) == 128 for e in extra if e for p in e)
    bert = np.array(t["text_and_bert"].column("name_bert_64").to_pylist())
    assert bert.shape[1] == 64 and np.linalg.norm(bert, axis=1).mean() == pytest.approx(4.0, rel=0.05)


def test_values_look_like_the_real_ones(demo_tables):
    attributes = demo_tables["attributes"].to_pandas()
    mapping = [json.loads(s) for s in attributes.characteristic_attributes_mapping]
    assert all(isinstance(v, list) for m in mapping for v in m.values())
    assert any("Цвет товара" in m for m in mapping)
    categories = [json.loads(s) for s in attributes.categories]
    assert all(set(c) == {"1", "2", "3", "4"} for c in categories)
    assert 10 <= len({c["2"] for c in categories}) <= 20
    descriptions = demo_tables["text_and_bert"].column("description").to_pandas()
    assert 0.05 < descriptions.isna().mean() < 0.2
    assert descriptions.str.contains("<").any() and descriptions.str.contains("&").any()


def test_known_dirt_is_there(demo_tables):
    train = demo_tables["train"].to_pandas()
    test = demo_tables["test"].to_pandas()
    key = lambda f: set(zip(np.minimum(f.variantid1, f.variantid2), np.maximum(f.variantid1, f.variantid2)))  # noqa: E731
    forward = set(zip(train.variantid1, train.variantid2))
    reversed_pairs = [(a, b) for a, b in forward if (b, a) in forward]
    assert reversed_pairs, "some pairs appear twice in reversed order"
    assert key(train) & key(test), "a few test pairs also sit in train"
    assert 0.35 < train.target.mean() < 0.6


def test_deterministic_by_seed_and_sized_by_the_knob():
    small = DemoSize(n_train_pairs=120, n_test_pairs=20)
    a, b, c = generate(small, seed=1), generate(small, seed=1), generate(small, seed=2)
    assert all(a[name].equals(b[name]) for name in a)
    assert not a["text_and_bert"].equals(c["text_and_bert"])
    assert a["test"].num_rows == 20 and 120 <= a["train"].num_rows <= 130


def test_product_count_is_the_knob_and_every_product_sits_in_a_pair():
    size = DemoSize(n_train_pairs=300, n_test_pairs=40, n_products=600)
    tables = generate(size, seed=4)
    ids = tables["attributes"].column("variantid").to_numpy()
    assert len(ids) == 600 and len(np.unique(ids)) == 600
    paired = np.concatenate(
        [tables[t].column(c).to_numpy() for t in ("train", "test") for c in ("variantid1", "variantid2")]
    )
    assert np.isin(ids, paired).mean() > 0.99  # an odd one out of the neighbour pairing may stay alone
    assert 0.4 < tables["train"].column("target").to_numpy().mean() < 0.56


def test_product_files_come_in_row_groups_of_one_random_stream_each(tmp_path):
    from matching.demo import generator as generate_demo

    size = DemoSize(n_train_pairs=200, n_test_pairs=20)
    cat, _, listings, ids = generate_demo.plan(size, seed=2)
    whole = next(generate_demo.product_batches(cat, listings, ids, seed=2, rows=len(listings)))
    parts = list(generate_demo.product_batches(cat, listings, ids, seed=2, rows=64))
    assert len(parts) == -(-len(listings) // 64)
    joined = pa.Table.from_batches([p["text_and_bert"] for p in parts])
    assert joined.column("variantid").equals(pa.chunked_array([whole["text_and_bert"].column("variantid")]))
    extra = pa.Table.from_batches([p["resnet"] for p in parts]).column("pic_embeddings_resnet_v1")
    counts = extra.combine_chunks().value_lengths().fill_null(0).to_numpy()
    assert counts.min() == 0 and counts.max() <= 16 and 0.2 < (counts == 0).mean() < 0.5


@pytest.mark.parametrize("n_products", [100, 1000])
def test_impossible_product_counts_are_refused(n_products):
    from matching.errors import DataError

    with pytest.raises(DataError, match="demo.n_products is"):
        generate(DemoSize(n_train_pairs=200, n_test_pairs=20, n_products=n_products), seed=1)
