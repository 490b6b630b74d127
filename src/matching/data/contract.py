"""The data contract of `docs/data.md`: reading the raw folder and checking each file.

Checks are vectorised over Arrow arrays; each failure is a `DataError` whose one line names the
file, the column, the first bad row and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from matching.errors import DataError
from matching.parallel import arrow_chunks, in_processes

NAME_DIM = 64
PHOTO_DIM = 128
MAIN_PHOTO, EXTRA_PHOTOS = "main_pic_embeddings_resnet_v1", "pic_embeddings_resnet_v1"


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def check_ids(table: pa.Table, column: str, label: str, unique: bool) -> np.ndarray:
    values = table.column(column)
    if not pa.types.is_integer(values.type):
        raise DataError(f"{label}: column {column} has type {values.type}, expected integer ids")
    if values.null_count:
        row = _first_bad(values.is_null().to_numpy(zero_copy_only=False))
        raise DataError(f"{label}: column {column} is null at row {row}; every row needs an id")
    if pa.types.is_uint64(values.type):  # above 2**63 - 1 an id would wrap to a negative int64
        too_large = pc.greater(values, pa.scalar(np.iinfo(np.int64).max, pa.uint64())).to_numpy(zero_copy_only=False)
        if too_large.any():
            row = _first_bad(too_large)
            raise DataError(
                f"{label}: column {column} holds {values[row].as_py()} at row {row}, above the largest id this "
                f"pipeline stores ({np.iinfo(np.int64).max}); renumber the ids below it"
            )
    ids = values.to_numpy().astype(np.int64, copy=False)
    if unique:
        check_unique(ids, lambda row: (label, row), column)
    return ids


def check_unique(ids: np.ndarray, where: Callable[[int], tuple[str, int]], column: str = "variantid") -> None:
    """Refuse an id that appears twice; `where` turns a position in `ids` into (file label, row)."""
    order = np.argsort(ids, kind="stable")
    repeated = ids[order][1:] == ids[order][:-1]
    if repeated.any():
        first = order[1:][repeated].min()  # the earliest second occurrence
        dup = ids[first]
        label, row = where(int(_first_bad(ids == dup)))
        second_label, second_row = where(int(first))
        again = f"row {second_row}" if second_label == label else f"{second_label} row {second_row}"
        raise DataError(
            f"{label}: column {column} repeats id {dup} (first at row {row}, again at {again}); "
            "keep one row per product"
        )


def check_target(table: pa.Table, label: str) -> np.ndarray:
    target = table.column("target")
    if not (pa.types.is_integer(target.type) or pa.types.is_floating(target.type) or pa.types.is_boolean(target.type)):
        raise DataError(f"{label}: column target has type {target.type}, expected 0/1 numbers")
    values = target.to_numpy(zero_copy_only=False).astype(np.float64)
    bad = ~np.isin(values, (0.0, 1.0))  # NaN (a null) is not in the set either
    if bad.any():
        row = _first_bad(bad)
        value = "null" if np.isnan(values[row]) else f"{values[row]:g}"
        raise DataError(f"{label}: column target is {value} at row {row}; targets must be 0 or 1")
    return values.astype(np.int8)


def check_strings(table: pa.Table, column: str, label: str, nullable: bool) -> None:
    values = table.column(column)
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type) or pa.types.is_null(values.type)):
        raise DataError(f"{label}: column {column} has type {values.type}, expected strings")
    if not nullable and values.null_count:
        row = _first_bad(values.is_null().to_numpy(zero_copy_only=False))
        raise DataError(f"{label}: column {column} is null at row {row}; fill it or drop the product")
    check_utf8(values, label, column)


def _is_list(type_: pa.DataType) -> bool:
    return pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_)


def _flatten_lengths(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Per-row list lengths (0 for null) and the flattened child values."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False)
    return lengths, pc.list_flatten(array)


def vector_matrix(column: pa.ChunkedArray, dim: int, label: str, name: str) -> tuple[np.ndarray, int]:
    """A list-of-floats column as an (n, dim) float32 matrix; nulls become NaN rows.

    A vector holding NaN is repaired into a missing (all-NaN) row and counted; infinity is refused.
    """
    if not _is_list(column.type) or not (pa.types.is_floating(column.type.value_type)):
        raise DataError(f"{label}: column {name} has type {column.type}, expected a list of {dim} floats")
    lengths, values = _flatten_lengths(column)
    nulls = column.is_null().to_numpy(zero_copy_only=False)
    wrong = (lengths != dim) & ~nulls
    if wrong.any():
        row = _first_bad(wrong)
        raise DataError(
            f"{label}: column {name} has {lengths[row]} floats at row {row}, expected {dim}; "
            "use the original embedding file"
        )
    matrix = np.full((len(column), dim), np.nan, dtype=np.float32)
    flat = values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    matrix[~nulls] = flat.reshape(-1, dim)
    rows = np.flatnonzero(~nulls)
    broken = rows[~_finite_rows(matrix[rows], rows, label, name)]
    matrix[broken] = np.nan
    return matrix, len(broken)


def _finite_rows(values: np.ndarray, rows: np.ndarray, label: str, name: str) -> np.ndarray:
    """Which vectors are free of NaN; infinity has no safe repair and stops the run."""
    infinite = np.isinf(values).any(axis=1)
    if infinite.any():
        raise DataError(
            f"{label}: column {name} holds an infinite value at row {rows[_first_bad(infinite)]}; "
            "drop or recompute that embedding"
        )
    return ~np.isnan(values).any(axis=1)


def photo_sets(column: pa.ChunkedArray, label: str, name: str, single: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """A list-of-photos column as (offsets, photos, dropped): photos of row i are
    photos[offsets[i]:offsets[i+1]]; a photo holding NaN is dropped and counted in `dropped`.

    `single` demands exactly one photo per non-null row (the main photo column).
    """
    if not _is_list(column.type) or not _is_list(column.type.value_type):
        raise DataError(
            f"{label}: column {name} has type {column.type}, expected a list of lists of {PHOTO_DIM} floats"
        )
    counts, inner = _flatten_lengths(column)
    if single:
        nulls = column.is_null().to_numpy(zero_copy_only=False)
        wrong = (counts != 1) & ~nulls
        if wrong.any():
            row = _first_bad(wrong)
            raise DataError(
                f"{label}: column {name} holds {counts[row]} photos at row {row}, expected one "
                f"array of {PHOTO_DIM} floats"
            )
    inner_lengths, values = _flatten_lengths(inner)
    row_of_photo = np.repeat(np.arange(len(counts)), counts)
    if len(inner_lengths) and (inner_lengths != PHOTO_DIM).any():
        photo = _first_bad(inner_lengths != PHOTO_DIM)
        raise DataError(
            f"{label}: column {name} has a photo of {inner_lengths[photo]} floats at row "
            f"{row_of_photo[photo]}, expected {PHOTO_DIM}; use the original embedding file"
        )
    photos = values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, PHOTO_DIM)
    keep = _finite_rows(photos, row_of_photo, label, name)
    if not keep.all():
        photos, counts = photos[keep], np.bincount(row_of_photo[keep], minlength=len(counts))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return offsets, photos, int((~keep).sum())


def _lists_of_strings(mapping: dict) -> bool:
    return all(isinstance(v, list) and all(isinstance(item, str) for item in v) for v in mapping.values())


def check_utf8(column: pa.ChunkedArray, label: str, name: str) -> None:
    """Refuse text that is not valid UTF-8 (parquet readers do not check it; Arrow's string
    functions later fail on it), naming the first bad row."""
    try:
        column.validate(full=True)
        return
    except pa.ArrowInvalid:
        pass
    for row, value in enumerate(column.cast(pa.binary()).to_pylist()):
        try:
            value is None or value.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(
                f"{label}: column {name} is not valid UTF-8 at row {row} ({value[:40]!r}); re-export the file as UTF-8"
            ) from None


JSON_CHUNK = 100_000  # rows of a JSON column a worker process checks at once


def check_json_objects(
    column: pa.ChunkedArray, label: str, name: str, list_values: bool, keep_keys: tuple[str, ...] = ()
) -> dict[str, pa.Array]:
    """Check that every row of a JSON-string column is an object (with `list_values`, of lists of
    strings), chunk by chunk; return only the values of `keep_keys` as strings, one array per key (null
    where a row lacks it), so no parsed dict outlives its row. Parsing is Python work: the chunks go to
    worker processes (`in_processes`), the first bad row in row order named."""
    jobs = (
        (rows, first_row, label, name, list_values, keep_keys) for first_row, rows in arrow_chunks(column, JSON_CHUNK)
    )
    kept: dict[str, list[pa.Array]] = {key: [] for key in keep_keys}
    for part in in_processes(_checked_json_rows, jobs):
        for key, values in part.items():
            kept[key].append(values)
    return {key: pa.concat_arrays(parts) if parts else pa.array([], pa.string()) for key, parts in kept.items()}


def _checked_json_rows(job: tuple[pa.Array, int, str, str, bool, tuple[str, ...]]) -> dict[str, pa.Array]:
    rows, row, label, name, list_values, keep_keys = job
    kept: dict[str, list] = {key: [] for key in keep_keys}
    for text in rows.to_pylist():
        try:
            value = json.loads(text) if text is not None else {}
        except (json.JSONDecodeError, TypeError):
            raise DataError(
                f"{label}: column {name} is not JSON at row {row} ({str(text)[:40]!r}); "
                "export the column as JSON strings"
            ) from None
        if not isinstance(value, dict) or (list_values and not _lists_of_strings(value)):
            expected = "an object of lists of strings" if list_values else "an object"
            raise DataError(f"{label}: column {name} at row {row} is {type(value).__name__} JSON, expected {expected}")
        for key, values in kept.items():
            kept_value = value.get(key)
            if isinstance(kept_value, (dict, list)):  # a name is wanted; str() would keep its Python repr
                raise DataError(
                    f"{label}: column {name} at row {row} has {type(kept_value).__name__} JSON under {key!r}, "
                    "expected a name; export each level as a string"
                )
            values.append(None if kept_value is None else str(kept_value))
        row += 1
    return {key: pa.array(values, pa.string()) for key, values in kept.items()}
