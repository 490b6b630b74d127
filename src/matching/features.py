"""Stage `features`: pair features for train and test, through the same code.

Pairs are joined to products by `variantid` (never by row position); an id missing from a modality
gives NaN features for that modality, not a crash. Everything is vectorised over pairs.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
from rapidfuzz import fuzz
from rapidfuzz.process import cpdist
from sklearn.feature_extraction.text import CountVectorizer

from matching import paths
from matching.io import read_arrays, run_stage, write_parquet

KEYS = ["variantid1", "variantid2"]
# Columns of the feature files that are not model inputs.
META = KEYS + ["target", "category"]
CATEGORY_LEVELS = ("1", "2", "3", "4")


def positions(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row of each id in `sorted_ids`, or -1 where it is absent."""
    if len(sorted_ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    found = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
    return np.where(sorted_ids[found] == ids, found, -1)


def take(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """values[rows] with NaN (float) where a row is -1."""
    out = values[np.maximum(rows, 0)].astype(np.float32, copy=True)
    out[rows < 0] = np.nan
    return out


def vector_distances(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Cosine similarity, euclidean and manhattan distance row by row; NaN rows stay NaN."""
    dot = np.einsum("ij,ij->i", a, b)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(norms > 0, dot / norms, np.nan)
    diff = a - b
    return {"cos": cosine, "euclidean": np.linalg.norm(diff, axis=1), "manhattan": np.abs(diff).sum(axis=1)}


def embedding_features(pairs: pd.DataFrame, embeddings: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """Distances for every matrix of every modality; per-product scalars as min, max and |difference|."""
    columns: dict[str, np.ndarray] = {}
    for modality, arrays in embeddings.items():
        ids = arrays["variantid"]
        order = np.argsort(ids, kind="stable")
        rows = [positions(ids[order], pairs[k].to_numpy()) for k in KEYS]
        rows = [np.where(r >= 0, order[np.maximum(r, 0)], -1) for r in rows]
        for name, values in arrays.items():
            if name == "variantid":
                continue
            a, b = take(values, rows[0]), take(values, rows[1])
            prefix = f"{modality}_{name}"
            if values.ndim == 2:
                for kind, distance in vector_distances(a, b).items():
                    columns[f"{prefix}_{kind}"] = distance
            else:
                columns[f"{prefix}_min"] = np.minimum(a, b)
                columns[f"{prefix}_max"] = np.maximum(a, b)
                columns[f"{prefix}_absdiff"] = np.abs(a - b)
    return pd.DataFrame(columns, index=pairs.index).astype(np.float32)


def category_features(rows: list[np.ndarray], products: pd.DataFrame) -> pd.DataFrame:
    """Equality of each category level (NaN where either product lacks the level)."""
    columns = {}
    for level in CATEGORY_LEVELS:
        codes = pd.factorize(products[f"category_{level}"], use_na_sentinel=True)[0].astype(np.float32)
        codes[codes < 0] = np.nan
        a, b = take(codes, rows[0]), take(codes, rows[1])
        columns[f"category_{level}_equal"] = np.where(np.isnan(a) | np.isnan(b), np.nan, (a == b).astype(np.float32))
    return pd.DataFrame(columns)


def attribute_long_table(mappings: pd.Series) -> pd.DataFrame:
    """One row per (product row, attribute key) with integer codes for the key and its value list."""
    product, keys, values = [], [], []
    for row, text in enumerate(mappings):
        if text is None or pd.isna(text):
            continue
        for key, value in json.loads(text).items():
            product.append(row)
            keys.append(key)
            values.append("|".join(sorted(map(str, value))))
    return pd.DataFrame({
        "product": np.asarray(product, dtype=np.int64),
        "key": pd.factorize(pd.Series(keys, dtype=object))[0],
        "value": pd.factorize(pd.Series(values, dtype=object))[0],
    })


def attribute_features(rows: list[np.ndarray], long: pd.DataFrame, n_products: int) -> pd.DataFrame:
    """Shared keys, Jaccard of key sets, and the share of shared keys whose values are equal."""
    n_keys = np.bincount(long["product"], minlength=n_products).astype(np.float32)
    sides = []
    for side, product_rows in enumerate(rows):
        pair = pd.DataFrame({"pair": np.arange(len(product_rows)), "product": product_rows})
        sides.append(pair.merge(long, on="product").drop(columns="product")
                     .rename(columns={"value": f"value{side}"}))
    shared = sides[0].merge(sides[1], on=["pair", "key"])
    n_pairs = len(rows[0])
    shared_keys = np.bincount(shared["pair"], minlength=n_pairs).astype(np.float32)
    equal = np.bincount(shared["pair"], weights=(shared["value0"] == shared["value1"]).to_numpy(np.float64),
                        minlength=n_pairs).astype(np.float32)
    n1, n2 = take(n_keys, rows[0]), take(n_keys, rows[1])
    union = n1 + n2 - shared_keys
    missing = (rows[0] < 0) | (rows[1] < 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = pd.DataFrame({
            "attr_shared_keys": np.where(missing, np.nan, shared_keys),
            "attr_key_jaccard": np.where(union > 0, shared_keys / union, np.nan),
            "attr_equal_value_share": np.where(shared_keys > 0, equal / shared_keys, np.nan),
            "attr_keys_min": np.minimum(n1, n2),
            "attr_keys_max": np.maximum(n1, n2),
        })
    return out.astype(np.float32)


def name_features(rows: list[np.ndarray], names: pd.Series) -> pd.DataFrame:
    """rapidfuzz ratios and token Jaccard of the two names (NaN where either name is missing)."""
    text = names.fillna("").astype(str).str.lower().to_numpy(dtype=object)
    a = text[np.maximum(rows[0], 0)]
    b = text[np.maximum(rows[1], 0)]
    missing = (rows[0] < 0) | (rows[1] < 0) | (a == "") | (b == "")
    columns = {}
    for label, scorer in (("ratio", fuzz.ratio), ("partial_ratio", fuzz.partial_ratio),
                          ("token_sort_ratio", fuzz.token_sort_ratio), ("token_set_ratio", fuzz.token_set_ratio)):
        scores = cpdist(list(a), list(b), scorer=scorer, workers=-1, dtype=np.float32) / 100.0
        columns[f"name_{label}"] = np.where(missing, np.nan, scores)
    tokens = CountVectorizer(binary=True, token_pattern=r"(?u)\b\w+\b", lowercase=False, dtype=np.float32)
    matrix = tokens.fit_transform(text).tocsr()
    left, right = matrix[np.maximum(rows[0], 0)], matrix[np.maximum(rows[1], 0)]
    inter = np.asarray(left.multiply(right).sum(axis=1)).ravel()
    union = np.asarray(left.sum(axis=1)).ravel() + np.asarray(right.sum(axis=1)).ravel() - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        columns["name_token_jaccard"] = np.where(missing | (union == 0), np.nan, inter / union)
    return pd.DataFrame(columns).astype(np.float32)


def pair_features(pairs: pd.DataFrame, products: pd.DataFrame,
                  embeddings: dict[str, dict[str, np.ndarray]], attributes_long: pd.DataFrame) -> pd.DataFrame:
    """All features of `pairs`; `products` must be sorted by variantid."""
    pairs = pairs.reset_index(drop=True)
    product_ids = products["variantid"].to_numpy(np.int64)
    rows = [positions(product_ids, pairs[k].to_numpy(np.int64)) for k in KEYS]
    category = products["category_2"].to_numpy(dtype=object)[np.maximum(rows[0], 0)]
    meta = pairs[[c for c in META if c in pairs]].copy()
    meta["category"] = pd.Series(np.where(rows[0] >= 0, category, None), dtype=object).fillna("unknown").astype(str)
    parts = [meta, embedding_features(pairs, embeddings), category_features(rows, products),
             attribute_features(rows, attributes_long, len(products)), name_features(rows, products["name"])]
    return pd.concat(parts, axis=1)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in META]


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    products = pd.read_parquet(paths.PRODUCTS).sort_values("variantid", kind="stable").reset_index(drop=True)
    embeddings = {m: read_arrays(paths.embedding_file(m)) for m in paths.MODALITIES}
    attributes_long = attribute_long_table(products["attributes"])
    for pairs_path, out_path in ((paths.TRAIN_PAIRS, paths.TRAIN_FEATURES), (paths.TEST_PAIRS, paths.TEST_FEATURES)):
        features = pair_features(pd.read_parquet(pairs_path), products, embeddings, attributes_long)
        write_parquet(features, out_path)
        print(f"features: {len(features)} pairs x {len(feature_columns(features))} features -> {out_path}")


if __name__ == "__main__":
    run_stage(main)
