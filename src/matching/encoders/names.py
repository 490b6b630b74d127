"""Name vectors: the archive's ready `name_bert_64`, nothing to fit (the competition made them)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from matching.data.contract import NAME_DIM, vector_matrix
from matching.data.ids import align


def name_vectors(batches: Iterable[tuple[str, np.ndarray, pa.Table]], wanted_ids: np.ndarray) -> np.ndarray:
    """`name_bert_64` of the wanted products from the text file's batches (label, ids, table); a
    product without one gets a NaN row."""
    ids, matrices = [np.empty(0, np.int64)], [np.empty((0, NAME_DIM), np.float32)]
    for label, batch_ids, table in batches:
        ids.append(batch_ids)
        matrices.append(vector_matrix(table.column("name_bert_64"), NAME_DIM, label, "name_bert_64")[0])
    return align(np.concatenate(ids), np.concatenate(matrices), wanted_ids)
