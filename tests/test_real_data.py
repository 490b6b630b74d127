"""`matching-real-data`: the folder checked first, the settings its size calls for, the user's overrides kept."""

import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from matching import real_data


def archive(folder, train_pairs: int, photos: int):
    """The five files of the archive's layout with `train_pairs` train rows and `photos` photo rows."""
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table({"variantid1": [1] * train_pairs, "variantid2": [2] * train_pairs}), folder / "train.parquet"
    )
    for name in ("test", "attributes", "text_and_bert"):
        pq.write_table(pa.table({"variantid": [1]}), folder / f"{name}.parquet")
    pq.write_table(
        pa.table({"variantid": list(range(photos))}, schema=pa.schema([("variantid", pa.int64())])),
        folder / "resnet.parquet",
    )
    return folder


def test_the_volume_follows_the_train_pairs_and_blocks_the_modalities_present(tmp_path, monkeypatch):
    monkeypatch.setattr(real_data, "FULL_VOLUME_PAIRS", 100)
    small = archive(tmp_path / "small", train_pairs=99, photos=0)
    assert real_data.size_overrides(small) == {"volume": "small", "retrieval.blocks": "[names,attributes]"}
    full = archive(tmp_path / "full", train_pairs=100, photos=3)
    assert real_data.size_overrides(full) == {"volume": "full", "retrieval.blocks": "[names,attributes,photos]"}


def test_the_users_overrides_win_over_the_chosen_ones(tmp_path):
    folder = archive(tmp_path / "offers", train_pairs=10, photos=0)
    command = real_data.experiment_command(folder, ["volume=full", "encoder=lexical"])
    settings = command[4::2]
    assert command[:3] == ["dvc", "exp", "run"] and set(command[3::2]) == {"-S"}
    assert settings == [
        "data=ozon",
        f"data.raw_dir={folder}",
        "retrieval.blocks=[names,attributes]",
        "volume=full",
        "encoder=lexical",
    ]


@pytest.mark.parametrize("make", [None, "train_only"])
def test_a_missing_folder_or_file_is_named_in_one_line_and_nothing_runs(tmp_path, make):
    folder = tmp_path / "archive"
    if make:
        folder.mkdir()
        pq.write_table(pa.table({"variantid1": [1], "variantid2": [2]}), folder / "train.parquet")
    result = subprocess.run(
        [sys.executable, "-m", "matching.real_data", str(folder), "--dry-run"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert ("no such folder" if make is None else "missing test.parquet") in result.stderr
    assert "dvc exp run" not in result.stdout
