"""Stage `catalog`: the catalog store, what `matching-find` and `matching-score` read of catalog products.

The prepared products table rewritten as one uncompressed Arrow file, which the store memory-maps
beside the embedding files and photo sets (`matching.scoring.catalog`): scoring a catalog product
then reads neither the raw archive nor a whole parquet file.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from matching import paths
from matching.io import atomic_path
from matching.stage import run_stage

log = logging.getLogger(__name__)


def write_catalog_products(schema: pa.Schema, batches: Iterable[pa.RecordBatch], path: Path) -> None:
    """The products table (sorted by id), batch after batch, as one uncompressed Arrow file."""
    with atomic_path(path) as tmp, pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    layout = paths.project()
    products = pq.ParquetFile(layout.products)
    write_catalog_products(products.schema_arrow, products.iter_batches(batch_size=1 << 16), layout.catalog_products)
    log.info(f"catalog: {products.metadata.num_rows:,} products -> {layout.catalog_products}")


if __name__ == "__main__":
    run_stage(main)
