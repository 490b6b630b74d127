"""Name vectors: the archive's ready `name_bert_64`, nothing to fit (the competition made them)."""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from matching.data.contract import NAME_DIM, vector_matrix
from matching.data.ids import positions
from matching.parallel import ordered_map


def _batch_rows(
    sorted_wanted: np.ndarray, order: np.ndarray, item: tuple[str, np.ndarray, pa.Table]
) -> tuple[np.ndarray, np.ndarray]:
    """One batch's vectors and the wanted row each goes to (the batch's first row of a repeated id)."""
    label, batch_ids, table = item
    matrix = vector_matrix(table.column("name_bert_64"), NAME_DIM, label, "name_bert_64")[0]
    at = positions(sorted_wanted, batch_ids)
    _, first = np.unique(at, return_index=True)
    first = first[at[first] >= 0]
    return order[at[first]], matrix[first]


def name_vectors(batches: Iterable[tuple[str, np.ndarray, pa.Table]], wanted_ids: np.ndarray) -> np.ndarray:
    """`name_bert_64` of the wanted products from the text file's batches (label, ids, table), each
    batch checked on its own thread and put straight in its rows; a product without one gets a NaN row,
    a repeated product its first row's vector."""
    order = np.argsort(wanted_ids, kind="stable")
    out = np.full((len(wanted_ids), NAME_DIM), np.nan, dtype=np.float32)
    filled = np.zeros(len(wanted_ids), dtype=bool)
    for rows, matrix in ordered_map(functools.partial(_batch_rows, wanted_ids[order], order), batches):
        new = ~filled[rows]
        out[rows[new]] = matrix[new]
        filled[rows[new]] = True
    return out
