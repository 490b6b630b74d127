"""Reading the raw archive folder: which files exist, parquet opened with named errors, row groups
streamed. The only module that opens the raw files; stages call it at their edge."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from matching.data import contract
from matching.data.ids import contains
from matching.errors import DataError
from matching.parallel import ordered_map

BATCH_ROWS = 65_536


# file -> required columns; product files may come split into `<name>_test.parquet` too.
PAIR_FILES = {
    "train": ("variantid1", "variantid2", "target"),
    "test": ("variantid1", "variantid2"),
}


PRODUCT_FILES = {
    "attributes": ("variantid", "categories", "characteristic_attributes_mapping"),
    "text_and_bert": ("variantid", "name", "description", "name_bert_64"),
    "resnet": ("variantid", "main_pic_embeddings_resnet_v1", "pic_embeddings_resnet_v1"),
}


def product_file_paths(raw_dir: Path, name: str) -> list[Path]:
    """`name.parquet` and, in the split layout, `name_test.parquet`: whichever exist."""
    return [p for p in (raw_dir / f"{name}.parquet", raw_dir / f"{name}_test.parquet") if p.exists()]


def check_layout(raw_dir: Path) -> None:
    """Fail once, listing every file that is missing and where it was looked for."""
    if not raw_dir.is_dir():
        raise DataError(
            f"{raw_dir}: no such folder (looked for {raw_dir.resolve()}); put the archive's parquet files there "
            "or set data.raw_dir to the folder that holds them"
        )
    missing = [f"{name}.parquet" for name in PAIR_FILES if not (raw_dir / f"{name}.parquet").exists()]
    missing += [f"{name}.parquet" for name in PRODUCT_FILES if not product_file_paths(raw_dir, name)]
    if missing:
        raise DataError(
            f"{raw_dir}: missing {', '.join(missing)} (looked in {raw_dir.resolve()}); put the competition's "
            "parquet files there or set data.raw_dir to the folder that holds them"
        )


def open_parquet(path: Path, columns: tuple[str, ...] | list[str]) -> pq.ParquetFile:
    """Open a parquet file; one that is not parquet or lacks a column is named in the error. Pages
    are checked against their CRC checksums where the file carries them (the demo's files do)."""
    try:
        handle = pq.ParquetFile(path, page_checksum_verification=True)
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(f"{path}: not a readable parquet file ({error}); replace it with the original file")
    names = handle.schema_arrow.names
    absent = [c for c in columns if c not in names]
    if absent:
        raise DataError(
            f"{path}: missing column {', '.join(absent)} (has {', '.join(names)}); rename or restore the column"
        )
    return handle


@contextlib.contextmanager
def readable(path: Path) -> Iterator[None]:
    """A page that fails its checksum or does not decode becomes one line naming the file."""
    try:
        yield
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(f"{path}: a corrupt page ({error}); replace the file with the original") from None


def read_table(path: Path, columns: tuple[str, ...]) -> pa.Table:
    handle = open_parquet(path, columns)
    with readable(path):
        return handle.read(columns=list(columns))


def iter_batches(
    raw_dir: Path, name: str, columns: list[str], wanted_ids: np.ndarray | None = None
) -> Iterator[tuple[str, int, pa.RecordBatch]]:
    """Row batches of a product file (both layouts), with the file's name and the batch's first row.
    With `wanted_ids` (sorted), a row group none of them is in is skipped, by its id statistics or by
    its id column alone, before its other columns are read."""
    return _read_batches(raw_dir, name, columns, wanted_ids, None)


def _read_batches(
    raw_dir: Path, name: str, columns: list[str], wanted_ids: np.ndarray | None, cut: Callable | None
) -> Iterator:
    """`iter_batches`, each batch through `cut` where given (its None results left out). Row groups are
    read, and their batches cut, side by side on MATCHING_THREADS threads (`ordered_map`: file order,
    as many groups ahead as threads), so that a group's raw columns are let go as soon as it is cut."""
    for path in product_file_paths(raw_dir, name):
        handle = open_parquet(path, columns)
        sizes = [handle.metadata.row_group(group).num_rows for group in range(handle.num_row_groups)]
        groups = list(zip(range(len(sizes)), np.cumsum([0] + sizes[:-1]).tolist()))
        # Row group by row group: ParquetFile.iter_batches holds on to the buffers of the groups it
        # has read (about 3 GB after 12 groups of the full-size photo file), read_row_group does not.
        for batches in ordered_map(_GroupReader(path, columns, wanted_ids, cut), groups):
            yield from batches


class _GroupReader:
    """Reads one file's row groups, from any thread: a ParquetFile is not shared between threads, so
    each thread opens its own (for as long as this reader lives)."""

    def __init__(self, path: Path, columns: list[str], wanted_ids: np.ndarray | None, cut: Callable | None) -> None:
        self.path, self.columns, self.wanted_ids, self.cut = path, columns, wanted_ids, cut
        self.local = threading.local()

    def __call__(self, group_offset: tuple[int, int]) -> list:
        """The group's batches (label, first row, batch), each through `cut`; none if `wanted_ids` are
        given and the group holds none of them."""
        group, offset = group_offset
        if not hasattr(self.local, "handle"):
            self.local.handle = open_parquet(self.path, self.columns)
        handle = self.local.handle
        ids = None if self.wanted_ids is None else _ids_if_wanted(handle, self.path, group, self.wanted_ids)
        if self.wanted_ids is not None and ids is None:
            return []
        batches = []
        for batch in _read_group(handle, self.path, group, self.columns, ids).to_batches(max_chunksize=BATCH_ROWS):
            item = (str(self.path), offset, batch)
            offset += batch.num_rows
            if self.cut is not None:
                item = self.cut(item)
            if item is not None:
                batches.append(item)
        return batches


def _ids_if_wanted(handle: pq.ParquetFile, path: Path, group: int, wanted_ids: np.ndarray) -> pa.Table | None:
    """A row group's id column if the group may hold one of the wanted ids, else None: its min/max
    statistics first, then its ids (handed on, so the group's read skips them)."""
    statistics = handle.metadata.row_group(group).column(handle.schema_arrow.get_field_index("variantid")).statistics
    if statistics is not None and statistics.has_min_max:
        first, last = np.searchsorted(wanted_ids, [statistics.min, statistics.max], side="left")
        if first == last and (last == len(wanted_ids) or wanted_ids[last] != statistics.max):
            return None
    with readable(path):
        ids = handle.read_row_group(group, columns=["variantid"])
    held = contains(wanted_ids, ids.column(0).to_numpy().astype(np.int64, copy=False))
    return ids if held.any() else None


def _read_group(handle: pq.ParquetFile, path: Path, group: int, columns: list[str], ids: pa.Table | None) -> pa.Table:
    """A row group's columns; an id column already read is put in its place instead of read again."""
    if ids is None or "variantid" not in columns:
        with readable(path):
            return handle.read_row_group(group, columns=columns)
    with readable(path):
        table = handle.read_row_group(group, columns=[column for column in columns if column != "variantid"])
    return table.add_column(columns.index("variantid"), ids.schema.field(0), ids.column(0))


def read_product_file(raw_dir: Path, name: str, columns: tuple[str, ...] | None = None) -> pa.Table:
    columns = columns or PRODUCT_FILES[name]
    tables = [read_table(path, columns) for path in product_file_paths(raw_dir, name)]
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def raw_batches_for(
    raw_dir: Path, name: str, columns: list[str], wanted_ids: np.ndarray, skip_groups: bool = False
) -> Iterator[tuple[str, np.ndarray, pa.Table]]:
    """Batches of a raw product file cut to the wanted products: (label, ids, table), each batch cut on
    the thread that read it. `skip_groups` first reads a row group's ids alone and skips it if
    it holds no wanted product (worth it when the wanted products are few)."""
    wanted_ids = np.sort(wanted_ids)
    skip = wanted_ids if skip_groups else None
    return _read_batches(raw_dir, name, ["variantid"] + columns, skip, functools.partial(_wanted_rows, wanted_ids))


def _wanted_rows(wanted_ids: np.ndarray, item: tuple[str, int, pa.RecordBatch]) -> tuple | None:
    """(label, ids, table) of a batch's wanted rows, or None if it holds none."""
    label, _, batch = item
    ids = batch.column(0).to_numpy().astype(np.int64, copy=False)
    mask = contains(wanted_ids, ids)
    return (label, ids[mask], pa.Table.from_batches([batch]).filter(pa.array(mask))) if mask.any() else None


def read_product_rows(raw_dir: Path, name: str, columns: tuple[str, ...], wanted_ids: np.ndarray) -> pa.Table:
    """The rows of a product file (both layouts) whose variantid is wanted, row groups without one skipped."""
    columns = ("variantid", *columns)
    parts = [table for _, _, table in raw_batches_for(raw_dir, name, list(columns[1:]), wanted_ids, skip_groups=True)]
    if parts:
        return pa.concat_tables(parts, promote_options="permissive")
    return open_parquet(product_file_paths(raw_dir, name)[0], columns).schema_arrow.empty_table().select(list(columns))


def read_pairs(raw_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    frames = {}
    for name, columns in PAIR_FILES.items():
        label = str(raw_dir / f"{name}.parquet")
        table = read_table(raw_dir / f"{name}.parquet", columns)
        if table.num_rows == 0:
            raise DataError(f"{label}: has no rows; use the competition's {name}.parquet")
        frame = pd.DataFrame({c: contract.check_ids(table, c, label, unique=False) for c in columns[:2]})
        if "target" in columns:
            frame["target"] = contract.check_target(table, label)
        frames[name] = frame
    return frames["train"], frames["test"]


def read_id_file(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A parquet or CSV file of ids (CSV by its suffix); one line if it is missing or unreadable."""
    if not path.is_file():
        found = "is a folder" if path.is_dir() else "no such file"
        raise DataError(f"{path}: {found}; give a parquet or CSV file with columns {', '.join(columns)}")
    if path.suffix != ".csv":
        return read_table(path, columns).to_pandas()
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise DataError(f"{path}: not a readable CSV file ({error}); write it as CSV or parquet") from None
    for column in columns:
        if column in frame and frame[column].dtype == object:
            _refuse_wide_integers(frame[column], f"{path}: column {column}")
    return frame


def _refuse_wide_integers(values: pd.Series, label: str) -> None:
    """pandas reads a CSV integer beyond 64 bits as a Python int, which no id column can hold."""
    wide = values.map(lambda value: isinstance(value, int) and not -(2**63) <= value < 2**64).to_numpy(bool)
    if wide.any():
        row = int(wide.argmax())
        raise DataError(
            f"{label} holds {values.iloc[row]} at row {row}, beyond the 64-bit ids this pipeline stores; "
            "renumber the ids"
        )
