"""The array container: the .npz written here is the one `zipfile` writes, byte for byte."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from matching import npz
from matching.npz import StoredArrays, Stream, write_arrays


def zipfile_npz(arrays: dict[str, list[np.ndarray]], path) -> None:
    """The reference: each array's chunks through `ZipFile.open`, as `np.savez` stores members."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, chunks in arrays.items():
            shape = (sum(len(c) for c in chunks),) + chunks[0].shape[1:]
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as handle:
                header = {
                    "descr": np.lib.format.dtype_to_descr(chunks[0].dtype),
                    "fortran_order": False,
                    "shape": shape,
                }
                np.lib.format.write_array_header_1_0(handle, header)
                for chunk in chunks:
                    handle.write(np.ascontiguousarray(chunk).data)


def arrays_of_each_kind() -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 16)).astype(np.float32)
    return {
        "variantid": [np.arange(3000, dtype=np.int64) * 7],
        "vectors": [vectors[:1000], vectors[1000:]],
        "none": [np.zeros((0, 4), np.float32)],
        "flags": [rng.random(50) < 0.5],
        "columns": [np.asfortranarray(rng.normal(size=(20, 3)))],  # written row-major, as np.save would
    }


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("zip64_limit", [None, 100])  # 100: every size and offset needs zip64 fields
def test_the_written_npz_is_zipfiles_bytes_and_reads_back(tmp_path, monkeypatch, threads, zip64_limit):
    monkeypatch.setattr(npz, "THREADS", threads)
    monkeypatch.setattr(npz, "SIDE_BY_SIDE_BYTES", 1000)  # the large vectors go out in parts
    if zip64_limit is not None:
        monkeypatch.setattr(zipfile, "ZIP64_LIMIT", zip64_limit)
        monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)
    arrays = arrays_of_each_kind()
    zipfile_npz(arrays, tmp_path / "reference.npz")
    given = {name: chunks if len(chunks) > 1 else chunks[0] for name, chunks in arrays.items()}
    given["vectors"] = Stream((3000, 16), np.dtype(np.float32), iter(arrays["vectors"]))
    write_arrays(given, tmp_path / "written.npz")
    assert (tmp_path / "written.npz").read_bytes() == (tmp_path / "reference.npz").read_bytes()
    monkeypatch.undo()
    with np.load(tmp_path / "written.npz") as loaded:
        stored = StoredArrays(tmp_path / "written.npz")
        for name, chunks in arrays.items():
            np.testing.assert_array_equal(loaded[name], np.concatenate(chunks))
            np.testing.assert_array_equal(stored[name], np.concatenate(chunks))


def test_a_stream_that_ends_early_is_refused(tmp_path):
    short = Stream((10, 2), np.dtype(np.float32), iter([np.ones((4, 2), np.float32)]))
    with pytest.raises(ValueError, match="array vectors got 4 rows, its header says 10"):
        write_arrays({"vectors": short}, tmp_path / "a.npz")
    assert list(tmp_path.iterdir()) == []
