"""Work over a stream of batches on several threads: the stream's order, bounded read-ahead."""

import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from matching import parallel
from matching.data import raw
from matching.data.contract import NAME_DIM
from matching.encoders.names import name_vectors
from matching.parallel import ordered_map


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_results_come_in_the_items_order_whatever_finishes_first(threads):
    def work(item: int) -> int:
        time.sleep(0.01 * (item % 3 == 0))  # every third item finishes last
        return item * item

    assert list(ordered_map(work, range(10), threads)) == [i * i for i in range(10)]


def test_no_more_items_are_read_ahead_than_threads():
    pulled = []

    def items():
        for item in range(20):
            pulled.append(item)
            yield item

    results = ordered_map(lambda item: item, items(), threads=3)
    assert next(results) == 0 and len(pulled) == 3
    assert list(results) == list(range(1, 20))


def test_an_error_in_one_batch_reaches_the_caller():
    def work(item: int) -> int:
        if item == 4:
            raise ValueError("batch 4 is bad")
        return item

    with pytest.raises(ValueError, match="batch 4 is bad"):
        list(ordered_map(work, range(8), threads=2))


@pytest.mark.parametrize("threads", [1, 2])
def test_name_vectors_land_on_the_wanted_products_in_any_order(monkeypatch, threads):
    monkeypatch.setattr(parallel, "THREADS", threads)
    rng = np.random.default_rng(0)
    file_ids = rng.permutation(np.r_[np.arange(0, 40, 2), [6, 10]])  # two ids twice: the first row counts
    vectors = rng.normal(size=(len(file_ids), NAME_DIM)).astype(np.float32)
    batches = [
        ("text_and_bert.parquet", file_ids[i : i + 5], pa.table({"name_bert_64": pa.array(list(vectors[i : i + 5]))}))
        for i in range(0, len(file_ids), 5)
    ]
    wanted = rng.permutation(np.arange(-2, 45))
    first_row = {int(i): r for r, i in reversed(list(enumerate(file_ids)))}
    expected = np.array([vectors[first_row[i]] if i in first_row else [np.nan] * NAME_DIM for i in wanted.tolist()])
    np.testing.assert_array_equal(name_vectors(batches, wanted), expected)


@pytest.mark.parametrize("wanted", [None, np.array([3, 4, 25, 26, 27, 58])])
def test_row_groups_read_side_by_side_come_in_file_order(tmp_path, monkeypatch, wanted):
    ids = np.arange(60, dtype=np.int64)
    table = pa.table({"variantid": ids, "name_bert_64": pa.array([[float(i)] * 2 for i in ids])})
    pq.write_table(table, tmp_path / "text_and_bert.parquet", row_group_size=7)

    def batches(threads: int) -> list:
        monkeypatch.setattr(parallel, "THREADS", threads)
        found = raw.iter_batches(tmp_path, "text_and_bert", ["variantid", "name_bert_64"], wanted)
        return [(label, offset, batch.to_pydict()) for label, offset, batch in found]

    one = batches(1)
    assert batches(2) == one
    offsets = [offset for _, offset, _ in one]
    assert offsets == sorted(offsets) and all(b["variantid"][0] == offset for _, offset, b in one)
    kept = np.concatenate([b["variantid"] for _, _, b in one])
    groups = np.unique(ids // 7) if wanted is None else np.unique(wanted // 7)
    np.testing.assert_array_equal(kept, ids[np.isin(ids // 7, groups)])


@pytest.mark.parametrize("skip_groups", [False, True])
def test_batches_cut_to_the_wanted_products_are_the_same_on_any_thread_count(tmp_path, monkeypatch, skip_groups):
    ids = np.random.default_rng(1).permutation(60).astype(np.int64)
    pq.write_table(
        pa.table({"variantid": ids, "name": [f"n{i}" for i in ids]}), tmp_path / "a.parquet", row_group_size=8
    )
    monkeypatch.setattr(raw, "product_file_paths", lambda raw_dir, name: [raw_dir / "a.parquet"])
    wanted = np.array([40, 3, 17, 59, 0])

    def cut(threads: int) -> list:
        monkeypatch.setattr(parallel, "THREADS", threads)
        found = raw.raw_batches_for(tmp_path, "a", ["name"], wanted, skip_groups)
        return [(label, batch_ids.tolist(), table.to_pydict()) for label, batch_ids, table in found]

    one = cut(1)
    assert cut(2) == one
    kept = [i for _, batch_ids, _ in one for i in batch_ids]
    assert kept == [int(i) for i in ids if i in wanted]
    assert all(table["name"] == [f"n{i}" for i in batch_ids] for _, batch_ids, table in one)


def test_python_work_in_worker_processes_comes_back_in_order_and_its_error_reaches_the_caller():
    import json

    from matching.parallel import in_processes

    assert list(in_processes(json.loads, ["[1]", "2", "{}", "[3, 4]"], processes=2)) == [[1], 2, {}, [3, 4]]
    with pytest.raises(json.JSONDecodeError):
        list(in_processes(json.loads, ["1", "{", "2"], processes=2))
    # One item is not worth a worker's start: it is worked here, as a lone process would.
    assert list(in_processes(lambda _: os.getpid(), [None], processes=2)) == [os.getpid()]


def test_arrow_chunks_cover_the_rows_in_order_and_pickle_only_their_own_rows():
    import pickle

    from matching.parallel import arrow_chunks

    texts = [f"row {i} " + "x" * 1000 for i in range(10)] + [None]
    column = pa.chunked_array([pa.array(texts[:7]), pa.array(texts[7:])])
    chunks = list(arrow_chunks(column, 3))
    assert [first for first, _ in chunks] == [0, 3, 6, 7, 10]
    assert [v for _, rows in chunks for v in rows.to_pylist()] == texts
    whole = len(pickle.dumps(column.chunk(0)))
    assert len(pickle.dumps(chunks[0][1])) < whole / 2  # a plain slice would carry all seven rows


@pytest.mark.parametrize("modality", ["descriptions", "attributes"])
def test_texts_cleaned_in_worker_processes_are_the_texts_cleaned_here(monkeypatch, modality):
    import pandas as pd

    from matching.encoders import texts

    column, clean = texts.TEXT_OF[modality]
    values = {
        "description": ["<p>Чай&nbsp;&amp; кофе 😀</p>", None, "", "<b> </b>", "plain\ttext\u00a0here", "&lt;x&gt;"],
        "attributes": [
            '{"b": ["1", "2"], "a": ["x"]}',
            None,
            "{}",
            '{"цвет": ["красный"]}',
            '{"k": []}',
            '{"z": ["q"]}',
        ],
    }[column]
    products = pd.DataFrame({column: values * 3}, index=range(100, 118))
    monkeypatch.setattr(texts, "TEXT_CHUNK", 4)  # five chunks, the last short
    monkeypatch.setattr(parallel, "THREADS", 2)
    cleaned = texts.modality_texts(modality, products)
    assert cleaned.equals(clean(products[column])) and cleaned.index.tolist() == list(range(100, 118))


def test_a_script_without_a_main_guard_is_told_in_one_line_how_to_call_worker_processes(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import json\nfrom matching.parallel import in_processes\nlist(in_processes(json.loads, ['1', '2'], 2))\n"
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    told = "StageError: a worker process stopped before its work was done: a script that calls matching must do so"
    assert f'{told} under `if __name__ == "__main__":`' in result.stderr


def hold_memory(mib: int) -> int:
    """Touch `mib` MiB in a worker process, as a worker parsing a large chunk would."""
    block = bytearray(mib * 2**20)
    block[:: 2**12] = b"x" * len(block[:: 2**12])
    return len(block)


def test_a_stages_peak_memory_counts_its_worker_processes(monkeypatch, capsys):
    from matching import stage
    from matching.parallel import in_processes
    from matching.stage import peak_memory_gib

    def main(_argv):
        assert list(in_processes(hold_memory, [768, 16], processes=2)) == [768 * 2**20, 16 * 2**20]

    ballast = bytearray(2**30)  # this process at 1 GiB or more when the workers start
    ballast[:: 2**12] = b"x" * len(ballast[:: 2**12])
    monkeypatch.setattr(stage, "_with_workers_kib", 0)  # as in a stage's own process: no pool before
    own = peak_memory_gib()
    stage.run_stage(main)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    peak = float(line.split("peak memory ")[1].split(" GiB")[0])
    # The first worker's 768 MiB on top of this process, not this process's memory counted in each worker.
    assert own + 0.75 <= peak < 2 * own + 0.75
