"""Bad files and inputs a careful user might meet: each is refused in one line naming the file and saying
what to do, never a crash inside a library or a silently wrong result."""

import subprocess
import sys

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from torch import nn

from matching import paths
from matching.data import contract
from matching.data.raw import read_id_file
from matching.encoders.base import no_text_encoder
from matching.encoders.modalities import MODALITIES, TEXT_MODALITIES
from matching.errors import DataError, StageError
from matching.io import atomic_path
from matching.manifest import write_manifest
from matching.matchers import fitting
from matching.matchers.ensemble import load_ensemble, save_ensemble
from matching.matchers.lightgbm import FoldModel, load_models, save_models
from matching.npz import StoredArrays, write_arrays
from matching.retrieval.index import CatalogIndex
from matching.scoring.catalog import CatalogStore
from matching.scoring.products import new_products
from matching.stages.catalog import write_catalog_products


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_an_id_above_the_int64_range_is_refused_not_wrapped_to_a_negative_id():
    table = pa.table({"variantid": pa.array([7, 2**63 + 5], pa.uint64())})
    with pytest.raises(DataError) as error:
        contract.check_ids(table, "variantid", "attributes.parquet", unique=True)
    assert one_line(error).startswith("attributes.parquet: column variantid holds 9223372036854775813 at row 1")
    largest = pa.table({"variantid": pa.array([7, 2**63 - 1], pa.uint64())})
    assert contract.check_ids(largest, "variantid", "x", unique=True).tolist() == [7, 2**63 - 1]


def test_an_output_that_names_a_folder_is_refused(tmp_path):
    with pytest.raises(StageError) as error, atomic_path(tmp_path):
        pass
    assert one_line(error) == f"{tmp_path}: is a folder; give the path of a file to write"


def test_an_output_inside_a_file_is_refused_in_one_line(tmp_path):
    (tmp_path / "scores").write_text("a file, not a folder")
    with pytest.raises(StageError) as error, atomic_path(tmp_path / "scores" / "out.csv"):
        pass
    assert one_line(error).startswith(f"{tmp_path}/scores/out.csv: cannot be written (")
    assert one_line(error).endswith("); give a path in a writable folder")


def test_an_ids_file_that_is_a_folder_or_holds_an_integer_beyond_64_bits_is_refused_in_one_line(tmp_path):
    folder = tmp_path / "pairs.csv"
    folder.mkdir()
    with pytest.raises(DataError) as error:
        read_id_file(folder, ("variantid1", "variantid2"))
    assert one_line(error) == f"{folder}: is a folder; give a parquet or CSV file with columns variantid1, variantid2"
    wide = tmp_path / "wide.csv"
    wide.write_text("variantid1,variantid2\n7,8\n9,-99999999999999999999\n")
    with pytest.raises(DataError) as error:
        read_id_file(wide, ("variantid1", "variantid2"))
    assert one_line(error) == (
        f"{wide}: column variantid2 holds -99999999999999999999 at row 1, beyond the 64-bit ids this pipeline "
        "stores; renumber the ids"
    )
    # An id up to 2**64 - 1 is read; check_ids refuses it with its own line (above the int64 range).
    wide.write_text(f"variantid1,variantid2\n7,{2**64 - 1}\n")
    assert read_id_file(wide, ("variantid1", "variantid2")).variantid2.tolist() == [2**64 - 1]


@pytest.mark.parametrize("failure", ["numpy", "torch"])
def test_a_stage_out_of_memory_ends_in_one_line_and_status_2(capsys, failure):
    import torch

    from matching import stage

    def main(_argv):
        if failure == "numpy":
            np.empty((2**40, 2**20), np.float32)
        torch.empty(2**62, dtype=torch.uint8)

    with pytest.raises(SystemExit) as exit_:
        stage.run_stage(main)
    assert exit_.value.code == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and message.startswith("error: out of memory (")


def test_a_stage_error_that_is_not_about_memory_still_raises():
    from matching import stage

    def main(_argv):
        raise RuntimeError("a bug, not a full memory")

    with pytest.raises(RuntimeError, match="a bug"):
        stage.run_stage(main)


def test_a_write_leaves_another_running_writers_temporary_file_and_clears_a_dead_ones(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    try:
        running = tmp_path / f".scores.csv.{other.pid}.abc123.tmp"
        killed = tmp_path / f".scores.csv.{dead.stdout.strip()}.def456.tmp"
        running.write_text("half")
        killed.write_text("half")
        with atomic_path(tmp_path / "scores.csv") as tmp:
            tmp.write_text("done")
        assert running.exists() and not killed.exists()
        assert (tmp_path / "scores.csv").read_text() == "done"
    finally:
        other.kill()


def test_an_atomic_write_has_the_usual_permissions_and_a_block_that_writes_nothing_is_refused(tmp_path):
    with atomic_path(tmp_path / "scores.csv") as tmp:
        assert not tmp.exists()  # the writer creates it: no truncation of a file that is there
        tmp.write_text("done")
    (tmp_path / "usual.csv").write_text("done")
    assert (tmp_path / "scores.csv").stat().st_mode == (tmp_path / "usual.csv").stat().st_mode
    with pytest.raises(StageError) as error, atomic_path(tmp_path / "empty.csv"):
        pass
    assert one_line(error).startswith(f"{tmp_path / 'empty.csv'}: the stage wrote nothing there")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv", "usual.csv"]


@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_a_cut_array_file_is_refused(tmp_path, keep):
    write_arrays({"vectors": np.ones((1000, 8), np.float32), "ids": np.arange(1000)}, tmp_path / "a.npz")
    data = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "a.npz").write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DataError) as error:
        StoredArrays(tmp_path / "a.npz")
    assert one_line(error).startswith(f"{tmp_path / 'a.npz'}: not a readable array file")


@pytest.fixture
def lightgbm_models(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.random((200, 3)), rng.integers(0, 2, 200)
    params = {"objective": "binary", "verbosity": -1, "num_threads": 1, "deterministic": True}
    models = [FoldModel(lgb.train(params, lgb.Dataset(x, y), num_boost_round=5)) for _ in range(2)]
    save_models(models, tmp_path / "lightgbm")
    return tmp_path / "lightgbm"


def test_a_cut_lightgbm_model_is_refused_before_lightgbm_reads_it(lightgbm_models):
    assert len(load_models(lightgbm_models)) == 2
    fold = lightgbm_models / "fold_1.txt"
    fold.write_bytes(fold.read_bytes()[: fold.stat().st_size // 2])
    with pytest.raises(DataError) as error:
        load_models(lightgbm_models)
    assert (
        one_line(error)
        == f"{fold}: changed since it was saved (size or digest differs); rerun `dvc repro train@lightgbm`"
    )


def test_a_missing_lightgbm_fold_is_refused(lightgbm_models):
    (lightgbm_models / "fold_0.txt").unlink()
    with pytest.raises(DataError, match=r"fold_0.txt: missing \(the manifest lists it\)"):
        load_models(lightgbm_models)


@pytest.fixture
def fold_models(tmp_path):
    folder = tmp_path / "siamese"
    fitting.save_fold_models([nn.Linear(3, 2) for _ in range(3)], {"width": 3}, folder)
    return folder


def build(architecture):
    return nn.Linear(architecture["width"], 2)


def test_a_missing_or_zeroed_fold_of_a_network_is_refused_not_left_out(fold_models):
    assert len(fitting.load_fold_models(fold_models, build)) == 3
    weights = fold_models / "fold_2.safetensors"
    weights.write_bytes(bytes(weights.stat().st_size))
    with pytest.raises(DataError, match="fold_2.safetensors: changed since it was saved"):
        fitting.load_fold_models(fold_models, build)
    weights.unlink()
    with pytest.raises(DataError) as error:
        fitting.load_fold_models(fold_models, build)
    assert one_line(error) == f"{weights}: missing (the manifest lists it); rerun `dvc repro train@siamese`"


def test_weights_that_do_not_fit_their_architecture_are_refused(fold_models):
    (fold_models / "architecture.json").write_text('{"width": 4}')
    write_manifest(fold_models, [f"fold_{k}.safetensors" for k in range(3)] + ["architecture.json"])
    with pytest.raises(DataError) as error:
        fitting.load_fold_models(fold_models, build)
    assert "fold_0.safetensors: does not fit architecture.json" in one_line(error)


def test_a_cut_ensemble_file_is_refused(tmp_path):
    save_ensemble(tmp_path, {"method": "stacking", "matchers": ["lightgbm"], "weights": [1.0]}, {})
    (tmp_path / "ensemble.json").write_text('{"method": "stack')
    with pytest.raises(DataError) as error:
        load_ensemble(tmp_path)
    assert one_line(error) == f"{tmp_path / 'ensemble.json'}: not readable JSON; rerun `dvc repro ensemble`"


def test_a_junk_index_is_refused(tmp_path):
    vectors = np.random.default_rng(0).random((300, 8)).astype(np.float32)
    CatalogIndex.build(np.arange(300), vectors, 4, "Flat", 0, {}).save(tmp_path)
    assert len(CatalogIndex.load(tmp_path).ids) == 300
    (tmp_path / "index.faiss").write_bytes(b"not an index" * 10)
    with pytest.raises(StageError) as error:
        CatalogIndex.load(tmp_path)
    assert one_line(error).startswith(f"{tmp_path}: the index does not load (")
    assert one_line(error).endswith("rebuild it with `dvc repro index`")


def test_a_missing_cut_or_mismatched_catalog_store_says_to_rebuild_it(tmp_path):
    layout = paths.Layout(tmp_path)
    with pytest.raises(StageError) as error:
        CatalogStore.load(layout)
    assert (
        one_line(error)
        == f"{layout.catalog_products}: no catalog store; run `dvc repro catalog` in the trained repository"
    )
    ids = np.array([3, 5, 8])
    products = pa.table({"variantid": ids, "name": ["a", "b", "c"]})
    write_catalog_products(products.schema, products.to_batches(), layout.catalog_products)
    for modality in MODALITIES:
        write_arrays({"variantid": ids, "vectors": np.eye(3, dtype=np.float32)}, layout.embedding_file(modality))
    sets = {
        "variantid": ids,
        "starts": np.array([0, 1, 1]),
        "counts": np.array([1, 0, 2]),
        "has_main": np.ones(3, bool),
    }
    write_arrays({**sets, "photos": np.arange(3, dtype=np.float16)[:, None]}, layout.photo_sets)
    cut = CatalogStore.load(layout).products(np.array([8, 3]))
    assert cut.products.name.tolist() == ["a", "c"] and cut.photo_sets["photos"][:, 0].tolist() == [0, 1, 2]
    assert cut.photo_sets["starts"].tolist() == [0, 1] and cut.embeddings["names"]["vectors"][1, 2] == 1
    write_arrays({"variantid": ids[:2], "vectors": np.eye(2, dtype=np.float32)}, layout.embedding_file("names"))
    with pytest.raises(DataError) as error:
        CatalogStore.load(layout)
    assert "names.npz: its products differ from" in one_line(error) and "dvc repro catalog" in one_line(error)
    layout.catalog_products.write_bytes(layout.catalog_products.read_bytes()[:100])
    with pytest.raises(DataError) as error:
        CatalogStore.load(layout)
    assert "products.arrow: not a readable Arrow file" in one_line(error)


def test_a_new_card_without_its_text_row_is_scored_and_the_log_says_so(raw_dir, demo_tables, caplog):
    ids = np.sort(demo_tables["attributes"].column("variantid").to_numpy())[:5]
    text = demo_tables["text_and_bert"]
    kept = pc.invert(pc.is_in(text.column("variantid"), pa.array(ids[:2])))
    pq.write_table(text.filter(kept), raw_dir / "text_and_bert.parquet")
    encoders = {modality: no_text_encoder for modality in TEXT_MODALITIES}
    with caplog.at_level("WARNING"):
        read = new_products(raw_dir, ids, encoders)
    assert "text_and_bert.parquet: 2 of 5 products have no row; they are scored without" in caplog.text
    assert read.products.name.isna().tolist() == [True, True, False, False, False]


def test_a_category_level_that_is_an_object_is_refused_not_kept_as_its_repr():
    column = pa.chunked_array([pa.array(['{"1": "EPG", "2": "Books"}', '{"1": "EPG", "2": {"name": "Toys"}}'])])
    with pytest.raises(DataError) as error:
        contract.check_json_objects(column, "attributes.parquet", "categories", False, keep_keys=("1", "2"))
    assert one_line(error) == (
        "attributes.parquet: column categories at row 1 has dict JSON under '2', expected a name; "
        "export each level as a string"
    )


def test_json_rows_checked_in_worker_processes_keep_the_row_order_and_name_the_first_bad_row(monkeypatch):
    from matching import parallel

    levels = [f'{{"1": "A{i}", "2": "B{i}"}}' for i in range(7)] + [None, '{"1": "C"}']
    column = pa.chunked_array([pa.array(levels[:4]), pa.array(levels[4:])])  # chunks of rows cut across Arrow chunks
    monkeypatch.setattr(contract, "JSON_CHUNK", 3)
    monkeypatch.setattr(parallel, "THREADS", 2)
    kept = contract.check_json_objects(column, "attributes.parquet", "categories", False, keep_keys=("1", "2"))
    assert {key: values.to_pylist() for key, values in kept.items()} == {
        "1": [f"A{i}" for i in range(7)] + [None, "C"],
        "2": [f"B{i}" for i in range(7)] + [None, None],
    }
    bad = pa.chunked_array([pa.array(levels[:5] + ["[1]", "{", "[2]"])])
    with pytest.raises(DataError) as error:
        contract.check_json_objects(bad, "attributes.parquet", "categories", False)
    assert one_line(error) == "attributes.parquet: column categories at row 5 is list JSON, expected an object"


def test_a_score_outside_zero_to_one_is_refused_and_rounding_is_clipped():
    from matching.data.cleaning import submission

    pairs = pd.DataFrame({"variantid1": [1, 3], "variantid2": [2, 4]})
    rounded = pd.DataFrame({"variantid1": [1, 3], "variantid2": [2, 4], "score": [1 + 1e-9, 0.5]})
    assert submission(pairs, rounded).target.tolist() == [1.0, 0.5]
    wrong = rounded.assign(score=[1.7, 0.5])
    with pytest.raises(StageError) as error:
        submission(pairs, wrong)
    assert one_line(error).startswith("pair row 0 scored 1.7, not a probability (1 rows in all)")


def test_an_inner_split_without_both_classes_stops_the_fit_in_one_line():
    from matching.matchers.crossfit import check_stopping_rows

    check_stopping_rows(np.array([0.0, 1.0, 0.0]), 0)
    with pytest.raises(StageError) as error:
        check_stopping_rows(np.zeros(12), 2)
    assert one_line(error).startswith("fold 3's inner split holds only negative pairs (12 rows)")


def test_missing_card_files_name_the_flag_that_gave_the_folder(tmp_path):
    from matching.scoring.products import new_products

    with pytest.raises(DataError) as error:
        new_products(tmp_path, np.array([1]), {}, fix="point --cards at a folder holding the new cards' files")
    assert one_line(error).endswith("; point --cards at a folder holding the new cards' files")
    with pytest.raises(DataError, match="point --products at"):
        new_products(tmp_path, np.array([1]), {})


def test_a_saved_encoders_bad_model_is_reported_against_its_file(tmp_path):
    from matching.scoring.products import saved_text_encoder

    (tmp_path / "transformer.json").write_text('{"model": "no/such-model", "max_length": 16, "precision": "float32"}')
    with pytest.raises(StageError) as error:
        saved_text_encoder(tmp_path, "cpu", tmp_path / "static")
    assert one_line(error).startswith(f"{tmp_path / 'transformer.json'}: model 'no/such-model' cannot be loaded")


def test_an_id_above_the_int64_range_in_a_pairs_csv_is_refused_in_one_line(tmp_path):
    from matching.data.raw import read_id_file
    from matching.scoring.matcher import checked_pairs

    (tmp_path / "pairs.csv").write_text(f"variantid1,variantid2\n1,2\n3,{2**63 + 1}\n")
    pairs = read_id_file(tmp_path / "pairs.csv", ("variantid1", "variantid2"))
    with pytest.raises(DataError) as error:
        checked_pairs(pairs, "pairs.csv")
    assert one_line(error).startswith("pairs.csv: column variantid2 holds 9223372036854775809 at row 1")


def test_an_array_file_holding_python_objects_is_refused_in_one_line(tmp_path):
    np.savez(tmp_path / "lexical.npz", components=np.array([{"run": "code"}], dtype=object))
    with pytest.raises(DataError) as error:
        StoredArrays(tmp_path / "lexical.npz")
    assert (
        one_line(error)
        == f"{tmp_path / 'lexical.npz'}: components.npy holds Python objects; rerun the stage that writes it"
    )
