"""File I/O at the edges of the pipeline: atomic writes, params, stage entry points.

Every output is written to a temporary sibling and renamed into place, so a stage that fails
or is killed leaves no half-written file that DVC could cache as good.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import struct
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class StageError(Exception):
    """A problem the user can fix: the message says what is wrong and what to do."""


class DataError(StageError):
    """Bad input: the message names the file, the column or value, and what to do."""


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a run that was killed mid-write
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; outputs should read like any other file
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_parquet(frame: pd.DataFrame, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_table(table: pa.Table, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_json(payload: dict, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_csv(frame: pd.DataFrame, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Parquet for a `.parquet` path, else CSV: a command's output, in the format its name asks for."""
    (write_parquet if path.suffix == ".parquet" else write_csv)(frame, path)


@dataclass
class Stream:
    """An array too large to hold twice: its shape, its dtype and its rows, chunk after chunk."""

    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: Iterable[np.ndarray]


def write_arrays(arrays: dict[str, np.ndarray | list[np.ndarray] | Stream], path: Path | str) -> None:
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


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def configure_logging() -> None:
    """Progress and summaries go through `logging` to stdout, in order with any other output; the level
    is the environment variable MATCHING_LOG_LEVEL (DEBUG, INFO, the default, WARNING or ERROR)."""
    level = os.environ.get("MATCHING_LOG_LEVEL", "INFO").upper()
    if level not in LOG_LEVELS:
        raise StageError(f"MATCHING_LOG_LEVEL is {level!r}; use one of {', '.join(LOG_LEVELS)}")
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stdout, force=True)


def run_stage(main: Callable[[list[str] | None], None]) -> None:
    """Run a stage's main; bad input or setup becomes one line on stderr and exit status 2.

    A finished stage ends with one line of its wall time and peak memory (benchmarks/scale.py
    reads it).
    """
    start = time.perf_counter()
    # Arrow's default allocator (mimalloc) keeps freed pages for reuse; the system one gives them
    # back, which keeps a stage that streams a multi-GB file at the memory of one batch.
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        configure_logging()
        main(None)
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB
    spec = getattr(sys.modules["__main__"], "__spec__", None)  # `python -m matching.x` runs as __main__
    module = (spec.name if spec else main.__module__).removesuffix(".__main__").removesuffix(".command")
    stage = " ".join([module.rsplit(".", 1)[-1]] + sys.argv[1:])
    print(f"stage {stage}: {time.perf_counter() - start:.1f} s, peak memory {peak_gib:.2f} GiB")
