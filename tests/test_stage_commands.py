"""benchmarks/stage_commands.py: the stages as dvc.yaml names them and the hashes DVC would record."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from dvc_data.hashfile.build import build
from dvc_data.hashfile.db import HashFileDB
from dvc_objects.fs.local import LocalFileSystem

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from stage_commands import chosen, expanded_stages, output_hash  # noqa: E402


def dvc_hash(path: Path, tmp_path: Path) -> str:
    """The hash dvc-data builds for `path` (what `dvc repro` writes into dvc.lock)."""
    fs = LocalFileSystem()
    _, _, obj = build(HashFileDB(fs, str(tmp_path / "odb")), str(path), fs, "md5")
    return obj.hash_info.value


def test_output_hash_is_dvcs_for_files_and_folders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "inner" / "deeper").mkdir(parents=True)
    (out / "inner" / "x.txt").write_bytes(b"text with a windows ending\r\n")
    (out / "inner" / "deeper" / "a.bin").write_bytes(bytes(range(256)) * 5000)
    (out / "b.parquet").write_bytes(b"\x00\x01")
    (out / "empty").mkdir()
    with ThreadPoolExecutor(3) as pool:
        assert output_hash(out, pool) == dvc_hash(out, tmp_path)
        assert output_hash(out / "inner" / "x.txt", pool) == dvc_hash(out / "inner" / "x.txt", tmp_path)
        (out / "inner" / "deeper" / "a.bin").write_bytes(b"other bytes")
        assert output_hash(out, pool) == dvc_hash(out, tmp_path)


def test_stages_expand_as_dvc_names_them() -> None:
    dvc_yaml = yaml.safe_load((REPO / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"]["matchers"] = ["lightgbm", "siamese"]
    stages = expanded_stages(dvc_yaml, params)
    matchers = [name for name in stages if name.startswith("train@")]
    assert matchers == ["train@lightgbm", "train@siamese"]
    assert stages["train@siamese"]["cmd"] == "python -m matching.stages.train_siamese"
    assert stages["embed_text@descriptions"]["outs"] == [
        "data/embeddings/descriptions.npz",
        "models/encoders/descriptions",
    ]
    assert "data/params_checked.txt" in stages["check_params"]["outs"]
    # the order is dvc.yaml's, whatever order they are asked in
    assert chosen(stages, ["index", "embed_text", "prepare"]) == [
        "prepare",
        "embed_text@attributes",
        "embed_text@descriptions",
        "index",
    ]
    assert chosen(stages, ["embed_text@descriptions"]) == ["embed_text@descriptions"]
    with pytest.raises(SystemExit, match="no stage embed_txt"):
        chosen(stages, ["embed_txt"])


def test_the_cores_table_sets_each_stage_beside_the_two_core_record(monkeypatch) -> None:
    import tables

    two_cores = {"seconds": {"1": 80.0, "2": 40.0}}
    kept = {
        "stage_threads": [
            {
                "name": "cpu_full_size_demo",
                "results": {"stages": {"prepare": two_cores, "index": {"seconds": {"2": 20.0}}}},
            }
        ],
        "stage_commands": [
            {
                "name": "h100",
                "machine": {"cpu": "EPYC", "cores": 16, "gpu": "NVIDIA H100"},
                "results": {
                    "threads": 16,
                    "stages": {
                        "generate_demo": {"seconds": 30.0, "peak_gib": 3.0, "same_as_lock": {"data/demo": True}},
                        "prepare": {"seconds": 8.0, "peak_gib": 6.0, "same_as_lock": {"a": True, "b": False}},
                        "index": {"seconds": 7.0, "peak_gib": 5.0},
                    },
                },
            }
        ],
    }
    monkeypatch.setattr(tables, "records", lambda script: kept.get(script, []))
    lines = tables.stage_cores_table().splitlines()
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    assert {row[0] for row in rows} == {"h100 (16 cores of EPYC, 16 threads)"}  # the CPU, not the GPU
    assert [row[1:] for row in rows] == [
        ["generate_demo", "30.0", "", "", "3.00", "yes"],  # not in the record: nothing to compare
        ["prepare", "8.0", "40.0", "5.00x", "6.00", "no"],  # beside the record's most threads
        ["index", "7.0", "20.0", "2.86x", "5.00", ""],  # no reference lock: bytes not compared
        ["those stages together", "15.0", "60.0", "4.00x", "", ""],
    ]
    monkeypatch.setattr(tables, "records", lambda script: [])
    assert tables.stage_cores_table().startswith("No record yet")
