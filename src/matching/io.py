"""File I/O at the edges of the pipeline: atomic writes of tables and JSON.

Every output is written to a temporary sibling and renamed into place, so a stage that fails
or is killed leaves no half-written file that DVC could cache as good.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from matching.errors import StageError


def _writer_alive(temporary: Path) -> bool:
    """Whether the process that named `temporary` (`.<name>.<pid>.<random>.tmp`) still runs."""
    parts = temporary.name.rsplit(".", 3)
    if len(parts) != 4 or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    if path.is_dir():
        raise StageError(f"{path}: is a folder; give the path of a file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a run that was killed mid-write
            if not _writer_alive(stale):  # another run writing the same output keeps its own file
                stale.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as error:  # a parent that is a file, a read-only or full disk
        raise StageError(f"{path}: cannot be written ({error.strerror}); give a path in a writable folder") from None
    os.close(fd)
    tmp_path = Path(tmp)
    # The name is reserved, the file left for the writer to create (with the usual permissions, where
    # mkstemp's are 0600): ext4 writes a file opened with truncation out to disk when it is closed
    # (auto_da_alloc), which for a large output costs a wait the page cache would otherwise absorb.
    tmp_path.unlink()
    try:
        yield tmp_path
        if not tmp_path.exists():
            raise StageError(f"{path}: the stage wrote nothing there; rerun it, and report this if it recurs")
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
