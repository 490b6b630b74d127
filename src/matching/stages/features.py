"""Stage `features`: pair features for train and test pairs, through the same code and in one call.

One call over train and distinct test pairs (never their targets): a product's candidates, which the
`neighbours` group ranks, are all its pairs, each counted once. `features.groups` picks the groups.
What new pairs need is saved under `models/features/`: the fitted transforms, and the similarities of
every pair featured here, among which a new pair is ranked alone (`matching.features.neighbours`).
"""

from __future__ import annotations

import argparse
import functools
import logging

import pandas as pd

from matching import config, paths
from matching.data.cleaning import distinct_test_pairs
from matching.encoders.modalities import MODALITIES
from matching.features.columns import KEYS, feature_columns
from matching.features.neighbours import SCORES
from matching.features.pairs import pair_features
from matching.features.products import ProductTables, product_tables
from matching.io import write_parquet
from matching.npz import StoredArrays, read_arrays
from matching.parallel import release_freed_memory, steps_side_by_side
from matching.stage import run_stage

log = logging.getLogger(__name__)


def load_tables(layout: paths.Layout, settings: config.Features, seed: int) -> ProductTables:
    """Products with their texts kept as Arrow strings; embedding files and photo sets are read only
    while their group runs (one at a time: together they are the largest thing in memory)."""
    products = pd.read_parquet(layout.products, dtype_backend="pyarrow")
    embeddings = {m: functools.partial(StoredArrays, layout.embedding_file(m)) for m in MODALITIES}
    return product_tables(
        products,
        embeddings,
        functools.partial(read_arrays, layout.photo_sets),
        settings.tfidf_max_features,
        settings.tfidf_fit_sample,
        seed,
    )


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params)
    tables = load_tables(layout, cfg.features, cfg.seed)
    release_freed_memory()  # the product tables' temporaries, freed on the threads that made them
    assert tables.transforms is not None  # product_tables fits them when none are given
    tables.transforms.save(layout.feature_transforms)
    # Each test pair once (repeats, the other orientation and self pairs get their score in predict).
    train, test = pd.read_parquet(layout.train_pairs), distinct_test_pairs(pd.read_parquet(layout.test_pairs))
    both = pair_features(pd.concat([train, test], ignore_index=True), tables, list(cfg.features.groups))
    train_features = both.iloc[: len(train)].astype({"target": train["target"].dtype})
    outputs = {
        layout.train_features: train_features,
        layout.test_features: both.iloc[len(train) :].drop(columns="target").reset_index(drop=True),
        layout.neighbour_candidates: both[KEYS + [c for c in SCORES if c in both]],
    }
    with steps_side_by_side() as pool:  # a parquet file is encoded on one thread: the files side by side
        for written in [pool.submit(write_parquet, frame, out_path) for out_path, frame in outputs.items()]:
            written.result()
    for out_path in (layout.train_features, layout.test_features):
        features = outputs[out_path]
        log.info(f"features: {len(features)} pairs x {len(feature_columns(features))} features -> {out_path}")


if __name__ == "__main__":
    run_stage(main)
