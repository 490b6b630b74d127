"""Stage `generate_demo`: the demo archive, five parquet files in exactly the real schema.

Deterministic by `demo.seed`, sized by `demo.*` (`-S demo=full`: the real archive's volumes); see
`matching.demo.generator` for what it plants. Product files are written one row group of 65,536
products at a time, so memory stays that of one batch.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from matching import config, paths
from matching.demo.generator import DemoSize, plan, product_batches
from matching.io import atomic_path
from matching.stage import run_stage

log = logging.getLogger(__name__)


def write_tables(tables: dict[str, pa.Table], out_dir: Path) -> None:
    for name, table in tables.items():
        with atomic_path(out_dir / f"{name}.parquet") as tmp:
            pq.write_table(table, tmp, write_page_checksum=True)


def write_demo(size: DemoSize, seed: int, out_dir: Path) -> dict[str, int]:
    """Write the five files batch by batch (one row group each): memory stays that of one batch."""
    cat, tables, listings, ids = plan(size, seed)
    write_tables(tables, out_dir)
    with contextlib.ExitStack() as stack:
        writers: dict[str, pq.ParquetWriter] = {}
        for batch in product_batches(cat, listings, ids, seed):
            for name, records in batch.items():
                if name not in writers:
                    tmp = stack.enter_context(atomic_path(out_dir / f"{name}.parquet"))
                    writers[name] = stack.enter_context(pq.ParquetWriter(tmp, records.schema, write_page_checksum=True))
                writers[name].write_batch(records)
    return {"train": tables["train"].num_rows, "test": tables["test"].num_rows, "products": len(ids)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for the five parquet files (default: data/demo)")
    args = parser.parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params)
    out = args.out or layout.demo_raw
    demo = cfg.demo
    size = DemoSize(n_train_pairs=demo.n_train_pairs, n_test_pairs=demo.n_test_pairs, n_products=demo.n_products)
    rows = write_demo(size, demo.seed, out)
    log.info(f"demo: {rows['train']} train pairs, {rows['test']} test pairs, {rows['products']} products -> {out}")


if __name__ == "__main__":
    run_stage(main)
