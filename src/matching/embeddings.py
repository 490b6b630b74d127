"""Embedding files: named float32 matrices keyed by `variantid`, one row per product."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from matching import schema


def align(found_ids: np.ndarray, found: np.ndarray, wanted_ids: np.ndarray) -> np.ndarray:
    """Rows of `found` reordered to `wanted_ids`; a product not found gets a NaN row."""
    out = np.full((len(wanted_ids),) + found.shape[1:], np.nan, dtype=np.float32)
    if len(found_ids):
        order = np.argsort(found_ids, kind="stable")
        position = np.clip(np.searchsorted(found_ids[order], wanted_ids), 0, len(found_ids) - 1)
        hit = found_ids[order][position] == wanted_ids
        out[hit] = found[order][position[hit]]
    return out


def raw_batches_for(raw_dir: Path, name: str, columns: list[str],
                    wanted_ids: np.ndarray) -> Iterator[tuple[str, np.ndarray, pa.Table]]:
    """Batches of a raw product file cut to the wanted products: (label, ids, table)."""
    for label, _, batch in schema.iter_batches(raw_dir, name, ["variantid"] + columns):
        ids = batch.column(0).to_numpy().astype(np.int64, copy=False)
        mask = np.isin(ids, wanted_ids)
        if mask.any():
            yield label, ids[mask], pa.Table.from_batches([batch]).filter(pa.array(mask))
