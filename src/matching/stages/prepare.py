"""Stage `prepare`: validate the raw files, clean the train pairs, keep the products the pairs name.

Writes the cleaned train and test pairs, one products table (text, attributes, category levels)
and a data report with a plot of missing values. Embedding columns are validated here and read
again, filtered to these products, by the embed stages.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa

from matching import config, paths
from matching.data import contract, raw
from matching.data.cleaning import check_both_classes, check_known_ids, clean_train_pairs, sample_pairs
from matching.data.ids import distinct_ids
from matching.data.products import build_products
from matching.data.report import data_report, scan_vectors
from matching.errors import DataError
from matching.io import write_csv, write_json, write_parquet, write_table
from matching.parallel import steps_side_by_side
from matching.stage import run_stage

log = logging.getLogger(__name__)


def prepare(raw_dir: Path, sample: float, seed: int, layout: paths.Layout | None = None) -> None:
    layout = layout or paths.project()
    raw.check_layout(raw_dir)
    train_raw, test = raw.read_pairs(raw_dir)
    train, cleaning = clean_train_pairs(train_raw, test)
    train = sample_pairs(train, sample, seed)
    if train.empty:
        raise DataError(
            f"{raw_dir / 'train.parquet'}: no pairs left after cleaning and sampling; "
            "check the file or raise data.sample"
        )
    check_both_classes(train, str(raw_dir / "train.parquet"))

    attributes = raw.read_product_file(raw_dir, "attributes")
    known = contract.check_ids(attributes, "variantid", str(raw_dir / "attributes.parquet"), unique=True)
    check_known_ids(train, known, str(raw_dir / "train.parquet"))
    check_known_ids(test, known, str(raw_dir / "test.parquet"))
    keep = distinct_ids(
        np.concatenate(
            [train[c].to_numpy() for c in ("variantid1", "variantid2")]
            + [test[c].to_numpy() for c in ("variantid1", "variantid2")]
        )
    )
    with steps_side_by_side() as steps:
        # The products' JSON checks keep worker processes busy and leave this one waiting: the
        # embedding files are checked meanwhile. On one thread the products come first.
        built = steps.submit(products_table, raw_dir, attributes, known, keep)
        vectors = scan_vectors(
            raw.iter_batches(raw_dir, "text_and_bert", ["variantid", "name_bert_64"]),
            raw.iter_batches(raw_dir, "resnet", ["variantid", contract.MAIN_PHOTO, contract.EXTRA_PHOTOS]),
            keep,
        )
        products = built.result()
    del attributes

    raw_rows = {"train": len(train_raw), "test": len(test), "products": int(len(known))}
    report, plot = data_report(train, test, products, vectors, raw_rows, cleaning)
    write_parquet(train, layout.train_pairs)
    write_parquet(test, layout.test_pairs)
    write_table(products, layout.products)
    write_json(report, layout.data_report)
    write_csv(plot, layout.missing_plot)
    log.info(
        f"prepare: {len(train)} train pairs ({report['positive_share']:.1%} positive), {len(test)} test pairs, "
        f"{products.num_rows} products; cleaning {cleaning}"
    )


def products_table(raw_dir: Path, attributes: pa.Table, known: np.ndarray, keep: np.ndarray) -> pa.Table:
    """The products table of the products in `keep`, from the attribute table and the text file."""
    text = raw.read_product_file(raw_dir, "text_and_bert", ("variantid", "name", "description"))
    labels = (str(raw_dir / "attributes.parquet"), str(raw_dir / "text_and_bert.parquet"))
    return build_products(attributes, known, keep, text, labels)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params)
    prepare(layout.raw_dir(cfg.data.raw_dir), cfg.data.sample, cfg.seed, layout)


if __name__ == "__main__":
    run_stage(main)
