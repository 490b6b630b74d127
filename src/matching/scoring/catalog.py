"""The catalog store: what scoring needs of every catalog product, read by id without the raw archive.

The `catalog` stage writes the prepared products table as one uncompressed Arrow file
(`matching.stages.catalog`); the embedding
files and photo sets the embed stages wrote are already uncompressed arrays. All of it is
memory-mapped, so loading costs no read, and a set of products is cut out by id: the rows of the
products table, of each embedding and of the photo sets, in the layout `new_products` gives for cards
read from an archive (`NewProducts`), so that the features and the networks read both alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from matching import paths
from matching.data.ids import contains, distinct_ids, positions
from matching.encoders.modalities import MODALITIES
from matching.errors import DataError, StageError
from matching.npz import StoredArrays
from matching.scoring.products import NewProducts

REBUILD = "run `dvc repro catalog` in the trained repository"


class CatalogStore:
    """The catalog's products table, embeddings and photo sets, memory-mapped, cut by id."""

    def __init__(self, layout: paths.Layout):
        label = layout.catalog_products
        try:
            self.table = pa.ipc.open_file(pa.memory_map(str(label))).read_all()
        except FileNotFoundError:
            raise StageError(f"{label}: no catalog store; {REBUILD}") from None
        except (pa.ArrowInvalid, OSError) as error:
            raise DataError(f"{label}: not a readable Arrow file ({error}); {REBUILD}") from None
        self.ids = self.table.column("variantid").to_numpy().astype(np.int64)
        self.embeddings = {m: StoredArrays(layout.embedding_file(m)) for m in MODALITIES}
        self.photo_sets = StoredArrays(layout.photo_sets)
        for stored in (*self.embeddings.values(), self.photo_sets):
            if not np.array_equal(stored["variantid"], self.ids):
                raise DataError(f"{stored.path}: its products differ from {label}'s; {REBUILD}")

    @classmethod
    def load(cls, layout: paths.Layout) -> CatalogStore:
        return cls(layout)

    def holds(self, ids: np.ndarray) -> np.ndarray:
        """Whether each id is a catalog product."""
        return contains(self.ids, np.asarray(ids, dtype=np.int64))

    def products(self, ids: np.ndarray) -> NewProducts:
        """The catalog products `ids` (each once, sorted; every one must be a catalog product)."""
        ids = distinct_ids(np.asarray(ids, dtype=np.int64))
        rows = positions(self.ids, ids)
        if (rows < 0).any():
            raise DataError(f"product {ids[rows < 0][0]} is not in the catalog; give its card")
        products = table_rows(self.table, rows).to_pandas(types_mapper=pd.ArrowDtype)
        embeddings = {m: {k: np.asarray(v[rows]) for k, v in arrays.items()} for m, arrays in self.embeddings.items()}
        return NewProducts(products, embeddings, photo_subsets(self.photo_sets, rows))


def table_rows(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """The rows `rows` (ascending) of a table, taken record batch by record batch.

    `Table.take` joins a column's chunks before taking (it copies the whole memory-mapped column);
    taking from each chunk touches only the pages of the rows asked for."""
    batches = table.to_batches()
    starts = np.cumsum([0] + [len(batch) for batch in batches])
    chunk = np.searchsorted(starts, rows, side="right") - 1
    holding = np.flatnonzero(np.bincount(chunk, minlength=len(batches)))
    taken = [batches[k].take(pa.array(rows[chunk == k] - starts[k])) for k in holding]
    return pa.Table.from_batches(taken, schema=table.schema)


def photo_subsets(sets: StoredArrays, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The photo sets of the products at `rows`, their photos gathered in that order and `starts`
    pointing into them (the layout `photo_vectors` writes)."""
    starts, counts = np.asarray(sets["starts"][rows]), np.asarray(sets["counts"][rows])
    new_starts = (np.cumsum(counts) - counts).astype(starts.dtype)
    photo_rows = np.repeat(starts - new_starts, counts) + np.arange(counts.sum())
    picked = {k: np.asarray(v[rows]) for k, v in sets.items() if k not in ("photos", "starts")}
    return {**picked, "starts": new_starts, "photos": np.asarray(sets["photos"][photo_rows])}
