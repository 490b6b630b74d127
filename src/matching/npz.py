"""Named arrays in one uncompressed .npz: written chunk after chunk with fixed timestamps (equal arrays,
equal bytes), read back memory-mapped without copying and without running code."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from matching.errors import DataError
from matching.io import atomic_path


@dataclass
class Stream:
    """An array too large to hold twice: its shape, its dtype and its rows, chunk after chunk."""

    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: Iterable[np.ndarray]


def write_arrays(arrays: Mapping[str, np.ndarray | list[np.ndarray] | Stream], path: Path | str) -> None:
    """Named arrays in one uncompressed .npz that `np.load` reads (float32 matrices stay contiguous).

    An array given as a list of chunks or a `Stream` is written chunk after chunk, stacked along the
    first axis, and never held whole. Entries carry a fixed timestamp: equal arrays, equal bytes.
    """
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            if not isinstance(value, Stream):
                chunks = [np.asarray(c) for c in (value if isinstance(value, list) else [value])]
                value = Stream((sum(len(c) for c in chunks),) + chunks[0].shape[1:], chunks[0].dtype, chunks)
            header = {
                "descr": np.lib.format.dtype_to_descr(np.dtype(value.dtype)),
                "fortran_order": False,
                "shape": tuple(value.shape),
            }
            written = 0
            with archive.open(
                zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w", force_zip64=True
            ) as handle:
                np.lib.format.write_array_header_1_0(handle, header)
                for chunk in value.chunks:
                    handle.write(np.ascontiguousarray(chunk, dtype=value.dtype).data)
                    written += len(chunk)
            if written != value.shape[0]:
                raise ValueError(f"{path}: array {name} got {written} rows, its header says {value.shape[0]}")


class StoredArrays(Mapping):
    """The arrays of a .npz that `write_arrays` wrote (members stored, not compressed), mapped from the
    file read-only instead of copied out of the zip: an array costs no read until its pages are touched,
    and it is unmapped once dropped (each lookup maps it anew)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.headers: dict[str, tuple[int, tuple[int, ...], bool, np.dtype]] = {}
        try:
            self._read_headers()
        except (zipfile.BadZipFile, struct.error, ValueError, EOFError) as error:  # a cut or foreign file
            raise DataError(
                f"{self.path}: not a readable array file ({error}); rerun the stage that writes it"
            ) from None
        size = self.path.stat().st_size
        for name, (offset, shape, _, dtype) in self.headers.items():
            if offset + int(np.prod(shape)) * dtype.itemsize > size:
                raise DataError(
                    f"{self.path}: {name} is cut short (the file ends early); rerun the stage that writes it"
                )

    def _read_headers(self) -> None:
        with open(self.path, "rb") as handle, zipfile.ZipFile(handle) as archive:
            for info in archive.infolist():
                if info.compress_type != zipfile.ZIP_STORED:
                    raise DataError(f"{self.path}: {info.filename} is compressed; rerun the stage that writes the file")
                handle.seek(info.header_offset + 26)  # the local header's name and extra field lengths
                name_length, extra_length = struct.unpack("<HH", handle.read(4))
                handle.seek(info.header_offset + 30 + name_length + extra_length)
                version = np.lib.format.read_magic(handle)
                read_header = (
                    np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(handle)
                if dtype.hasobject:
                    raise DataError(
                        f"{self.path}: {info.filename} holds Python objects; rerun the stage that writes it"
                    )
                self.headers[info.filename.removesuffix(".npy")] = (handle.tell(), shape, fortran, dtype)

    def __getitem__(self, name: str) -> np.ndarray:
        offset, shape, fortran, dtype = self.headers[name]
        if int(np.prod(shape)) == 0:
            return np.zeros(shape, dtype=dtype)
        mapped = np.memmap(self.path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
        return mapped.view(np.ndarray)

    def __iter__(self) -> Iterator[str]:
        return iter(self.headers)

    def __len__(self) -> int:
        return len(self.headers)


def read_arrays(path: Path | str) -> dict[str, np.ndarray]:
    """Every array of a .npz, memory-mapped (read-only)."""
    stored = StoredArrays(path)
    return {name: stored[name] for name in stored}
