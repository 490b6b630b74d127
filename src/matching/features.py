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
from matching.neighbours import neighbour_group

KEYS = ["variantid1", "variantid2"]
# Columns of the feature files that are not model inputs.
META = KEYS + ["target", "category"]
# The per-pair groups, then `neighbours`, which compares a pair with the product's other pairs.
ALL_GROUPS = [*GROUPS, "neighbours"]


def pair_features(pairs: pd.DataFrame, tables: ProductTables, groups: list[str]) -> pd.DataFrame:
    """Features of `pairs` from the chosen groups, in the pairs' order. `neighbours` compares each
    pair with the other rows of `pairs` that share a product: pass all candidate pairs at once."""
    unknown = sorted(set(groups) - set(ALL_GROUPS))
    if unknown:
        raise StageError(f"params.yaml: features.groups names {', '.join(unknown)}; choose from {', '.join(ALL_GROUPS)}")
    pairs = pairs.reset_index(drop=True)
    rows = [positions(tables.ids, pairs[k].to_numpy(np.int64)) for k in KEYS]
    meta = pairs[[c for c in META if c in pairs]].copy()
    code = np.where(rows[0] >= 0, tables.categories["2"][np.maximum(rows[0], 0)], -1)
    names = np.append(tables.category_names["2"], "unknown").astype(object)
    meta["category"] = names[np.where(code >= 0, code, len(names) - 1)].astype(str)
    columns: dict[str, np.ndarray] = {}
    for group in (g for g in groups if g in GROUPS):
        columns.update(GROUPS[group](rows, tables))
    if "neighbours" in groups:  # ranks the other groups' similarities, so it comes last
        columns.update(neighbour_group(rows, columns))
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
    train, test = pd.read_parquet(paths.TRAIN_PAIRS), pd.read_parquet(paths.TEST_PAIRS)
    # One call over train and test pairs: a product's candidates (group `neighbours`) are all its pairs.
    both = pair_features(pd.concat([train, test], ignore_index=True), tables, list(settings["groups"]))
    train_features = both.iloc[:len(train)].astype({"target": train["target"].dtype})
    for features, out_path in ((train_features, paths.TRAIN_FEATURES),
                               (both.iloc[len(train):].drop(columns="target"), paths.TEST_FEATURES)):
        write_parquet(features.reset_index(drop=True), out_path)
        print(f"features: {len(features)} pairs x {len(feature_columns(features))} features -> {out_path}")


if __name__ == "__main__":
    run_stage(main)
