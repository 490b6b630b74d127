"""Stage `features`: pair features for train and test, through the same code.

Pairs are joined to products by `variantid` (never by row position); an id missing from a modality
gives NaN features for that modality, not a crash. Product-level work (parsing, TF-IDF fits, codes)
is done once over all products; pair features are vectorised over chunks of pairs.
`features.groups` picks the groups (see feature_groups.py); each group's columns share a prefix.
"""
from __future__ import annotations

import argparse
import functools

import numpy as np
import pandas as pd

from matching import paths
from matching.embeddings import positions
from matching.feature_groups import GROUPS, ProductTables, product_tables
from matching.io import StageError, load_params, read_arrays, run_stage, write_parquet

KEYS = ["variantid1", "variantid2"]
# Columns of the feature files that are not model inputs.
META = KEYS + ["target", "category"]


def pair_features(pairs: pd.DataFrame, tables: ProductTables, groups: list[str]) -> pd.DataFrame:
    """Features of `pairs` from the chosen groups, in the pairs' order."""
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise StageError(f"params.yaml: features.groups names {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    pairs = pairs.reset_index(drop=True)
    rows = [positions(tables.ids, pairs[k].to_numpy(np.int64)) for k in KEYS]
    meta = pairs[[c for c in META if c in pairs]].copy()
    code = np.where(rows[0] >= 0, tables.categories["2"][np.maximum(rows[0], 0)], -1)
    names = np.append(tables.category_names["2"], "unknown").astype(object)
    meta["category"] = names[np.where(code >= 0, code, len(names) - 1)].astype(str)
    columns: dict[str, np.ndarray] = {}
    for group in groups:
        columns.update(GROUPS[group](rows, tables))
    return pd.concat([meta, pd.DataFrame(columns).astype(np.float32)], axis=1)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in META]


def load_tables(max_features: int, fit_sample: int, seed: int) -> ProductTables:
    """Products with their texts kept as Arrow strings; embedding files and photo sets are read only
    while their group runs (one at a time: together they are the largest thing in memory)."""
    products = pd.read_parquet(paths.PRODUCTS, dtype_backend="pyarrow")
    embeddings = {m: functools.partial(np.load, paths.embedding_file(m), allow_pickle=False) for m in paths.MODALITIES}
    return product_tables(products, embeddings, functools.partial(read_arrays, paths.PHOTO_SETS), max_features,
                          fit_sample, seed)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    params = load_params()
    settings = params["features"]
    tables = load_tables(int(settings["tfidf_max_features"]), int(settings["tfidf_fit_sample"]), int(params["seed"]))
    for pairs_path, out_path in ((paths.TRAIN_PAIRS, paths.TRAIN_FEATURES), (paths.TEST_PAIRS, paths.TEST_FEATURES)):
        features = pair_features(pd.read_parquet(pairs_path), tables, list(settings["groups"]))
        write_parquet(features, out_path)
        print(f"features: {len(features)} pairs x {len(feature_columns(features))} features -> {out_path}")


if __name__ == "__main__":
    run_stage(main)
