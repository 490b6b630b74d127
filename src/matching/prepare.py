"""Stage `prepare`: validate the raw files, clean the train pairs, keep the products the pairs name.

Writes the cleaned train and test pairs, one products table (text, attributes, category levels)
and a data report with a plot of missing values. Embedding columns are validated here and read
again, filtered to these products, by the embed stages.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matching import paths, schema
from matching.embeddings import positions
from matching.io import DataError, load_params, run_stage, write_csv, write_json, write_parquet, write_table

CATEGORY_LEVELS = ("1", "2", "3", "4")


def unordered_key(left: np.ndarray, right: np.ndarray) -> pd.MultiIndex:
    """A key that is the same for (a, b) and (b, a)."""
    return pd.MultiIndex.from_arrays([np.minimum(left, right), np.maximum(left, right)])


def clean_train_pairs(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Drop test pairs (either orientation), collapse repeated pairs, drop contradicting ones."""
    train_key = unordered_key(train.variantid1.to_numpy(), train.variantid2.to_numpy())
    test_key = unordered_key(test.variantid1.to_numpy(), test.variantid2.to_numpy())
    in_test = train_key.isin(test_key)
    train, train_key = train[~in_test], train_key[~in_test]

    labels = train.groupby([train_key.get_level_values(0), train_key.get_level_values(1)])["target"]
    contradicting = (labels.transform("nunique") > 1).to_numpy()
    repeated = train_key.duplicated(keep="first")
    kept = train[~contradicting & ~repeated].reset_index(drop=True)
    counts = {
        "test_pairs_dropped_from_train": int(in_test.sum()),
        "repeated_pairs_collapsed": int((repeated & ~contradicting).sum()),
        "contradicting_pairs_dropped": int(contradicting.sum()),
    }
    return kept, counts


def sample_pairs(pairs: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    if not 0 < fraction <= 1:
        raise DataError(f"params.yaml: data.sample is {fraction}; use a fraction in (0, 1]")
    if fraction == 1:
        return pairs
    return pairs.sample(frac=fraction, random_state=seed).sort_index().reset_index(drop=True)


def check_known_ids(pairs: pd.DataFrame, known: np.ndarray, label: str) -> None:
    for column in ("variantid1", "variantid2"):
        unknown = ~np.isin(pairs[column].to_numpy(), known)
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise DataError(
                f"{label}: column {column} names product {pairs[column].iat[row]} at row {row} "
                f"({int(unknown.sum())} rows in all) that is not in attributes.parquet; "
                "use product files from the same archive as the pairs")


def read_pairs(raw_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    frames = {}
    for name, columns in schema.PAIR_FILES.items():
        label = str(raw_dir / f"{name}.parquet")
        table = schema.read_table(raw_dir / f"{name}.parquet", columns)
        if table.num_rows == 0:
            raise DataError(f"{label}: has no rows; use the competition's {name}.parquet")
        frame = pd.DataFrame({c: schema.check_ids(table, c, label, unique=False) for c in columns[:2]})
        if "target" in columns:
            frame["target"] = schema.check_target(table, label)
        frames[name] = frame
    return frames["train"], frames["test"]


def _row_label(label: str, offset: int) -> str:
    return label if offset == 0 else f"{label} (batch from row {offset})"


def scan_vectors(raw_dir: Path, keep: np.ndarray) -> dict:
    """Validate name and photo embeddings batch by batch; count what the kept products lack and
    what was repaired (vectors holding NaN become missing ones)."""
    stats = {"name_bert_missing": 0, "main_photo_missing": 0, "extra_photos_missing": 0, "extra_photos_total": 0,
             "name_bert_nan_repaired": 0, "photos_nan_dropped": 0}
    seen_names, seen_photos = 0, 0
    for label, offset, batch in schema.iter_batches(raw_dir, "text_and_bert", ["variantid", "name_bert_64"]):
        table = pa.Table.from_batches([batch])
        mask = np.isin(table.column("variantid").to_numpy(), keep)
        matrix, repaired = schema.vector_matrix(table.column("name_bert_64"), schema.NAME_DIM,
                                                _row_label(label, offset), "name_bert_64")
        stats["name_bert_missing"] += int(np.isnan(matrix[mask, 0]).sum())
        stats["name_bert_nan_repaired"] += repaired
        seen_names += int(mask.sum())
    main, extra = "main_pic_embeddings_resnet_v1", "pic_embeddings_resnet_v1"
    for label, offset, batch in schema.iter_batches(raw_dir, "resnet", ["variantid", main, extra]):
        table = pa.Table.from_batches([batch])
        mask = np.isin(table.column("variantid").to_numpy(), keep)
        offsets, _, dropped_main = schema.photo_sets(table.column(main), _row_label(label, offset), main, single=True)
        stats["main_photo_missing"] += int((np.diff(offsets)[mask] == 0).sum())
        offsets, _, dropped_extra = schema.photo_sets(table.column(extra), _row_label(label, offset), extra,
                                                      single=False)
        counts = np.diff(offsets)[mask]
        stats["extra_photos_missing"] += int((counts == 0).sum())
        stats["extra_photos_total"] += int(counts.sum())
        stats["photos_nan_dropped"] += dropped_main + dropped_extra
        seen_photos += int(mask.sum())
    stats["name_bert_missing"] += len(keep) - seen_names
    stats["main_photo_missing"] += len(keep) - seen_photos
    stats["extra_photos_missing"] += len(keep) - seen_photos
    return stats


def _in_id_order(table: pa.Table, ids: np.ndarray, keep: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    """Rows of `table` whose id is in `keep`, sorted by id."""
    rows = np.flatnonzero(np.isin(ids, keep))
    rows = rows[np.argsort(ids[rows], kind="stable")]
    return table.take(pa.array(rows)), ids[rows]


def build_products(raw_dir: Path, attributes: pa.Table, ids: np.ndarray, keep: np.ndarray) -> pa.Table:
    """Text, attributes and category levels of the products in `keep`, validated, sorted by id.

    Columns stay Arrow strings (no Python object a row): the real archive has 2.25 M products."""
    label = str(raw_dir / "attributes.parquet")
    for column in ("categories", "characteristic_attributes_mapping"):
        schema.check_strings(attributes, column, label, nullable=True)
    attributes, product_ids = _in_id_order(attributes, ids, keep)
    levels = schema.check_json_objects(attributes.column("categories"), label, "categories", list_values=False,
                                       keep_keys=CATEGORY_LEVELS)
    schema.check_json_objects(attributes.column("characteristic_attributes_mapping"), label,
                              "characteristic_attributes_mapping", list_values=True)

    text = schema.read_product_file(raw_dir, "text_and_bert", ("variantid", "name", "description"))
    label = str(raw_dir / "text_and_bert.parquet")
    text_ids = schema.check_ids(text, "variantid", label, unique=True)
    schema.check_strings(text, "name", label, nullable=True)
    schema.check_strings(text, "description", label, nullable=True)
    text, text_ids = _in_id_order(text, text_ids, keep)
    # A product without a text row gets null name and description (a null index takes a null).
    rows = positions(text_ids, product_ids)
    text_rows = pa.array(rows, mask=rows < 0)
    columns = {
        "variantid": pa.array(product_ids),
        "attributes": attributes.column("characteristic_attributes_mapping"),
        **{f"category_{level}": pa.array([None if v is None else str(v) for v in levels[level]], pa.string())
           for level in CATEGORY_LEVELS},
        "name": text.column("name").take(text_rows).cast(pa.string()),
        "description": text.column("description").take(text_rows).cast(pa.string()),
    }
    return pa.table(columns)


def data_report(train: pd.DataFrame, test: pd.DataFrame, products: pa.Table, vectors: dict,
                raw_rows: dict, cleaning: dict) -> tuple[dict, pd.DataFrame]:
    n = products.num_rows

    def null_share(column: str) -> float:
        return products.column(column).null_count / n

    empty_attributes = pc.sum(pc.equal(products.column("attributes"), "{}")).as_py() or 0
    missing = {
        "name": null_share("name"),
        "description": null_share("description"),
        "attributes": null_share("attributes") + empty_attributes / n,
        "category_2": null_share("category_2"),
        "name_bert_64": vectors["name_bert_missing"] / n,
        "main_photo": vectors["main_photo_missing"] / n,
        "extra_photos": vectors["extra_photos_missing"] / n,
    }
    report = {
        "raw_rows": raw_rows,
        "rows": {"train_pairs": len(train), "test_pairs": len(test), "products": n},
        "positive_share": float(train.target.mean()),
        "cleaning": cleaning,
        "repaired": {"name_bert_64_with_nan_made_missing": vectors["name_bert_nan_repaired"],
                     "photos_with_nan_dropped": vectors["photos_nan_dropped"],
                     "null_descriptions_left_missing": products.column("description").null_count},
        "missing_share": {k: round(v, 6) for k, v in missing.items()},
        "extra_photos_per_product": round(vectors["extra_photos_total"] / n, 4),
        "level2_categories": len(pc.unique(products.column("category_2").drop_null())),
    }
    plot = pd.DataFrame({"column": list(missing), "missing_share": [round(v, 6) for v in missing.values()]})
    return report, plot


def prepare(raw_dir: Path, sample: float, seed: int) -> None:
    schema.check_layout(raw_dir)
    train_raw, test = read_pairs(raw_dir)
    train, cleaning = clean_train_pairs(train_raw, test)
    train = sample_pairs(train, sample, seed)
    if train.empty:
        raise DataError(f"{raw_dir / 'train.parquet'}: no pairs left after cleaning and sampling; "
                        "check the file or raise data.sample")

    attributes = schema.read_product_file(raw_dir, "attributes")
    known = schema.check_ids(attributes, "variantid", str(raw_dir / "attributes.parquet"), unique=True)
    check_known_ids(train, known, str(raw_dir / "train.parquet"))
    check_known_ids(test, known, str(raw_dir / "test.parquet"))
    keep = np.unique(np.concatenate([train[c].to_numpy() for c in ("variantid1", "variantid2")]
                                    + [test[c].to_numpy() for c in ("variantid1", "variantid2")]))
    products = build_products(raw_dir, attributes, known, keep)
    vectors = scan_vectors(raw_dir, keep)

    raw_rows = {"train": len(train_raw), "test": len(test), "products": int(len(known))}
    report, plot = data_report(train, test, products, vectors, raw_rows, cleaning)
    write_parquet(train, paths.TRAIN_PAIRS)
    write_parquet(test, paths.TEST_PAIRS)
    write_table(products, paths.PRODUCTS)
    write_json(report, paths.DATA_REPORT)
    write_csv(plot, paths.MISSING_PLOT)
    print(f"prepare: {len(train)} train pairs ({report['positive_share']:.1%} positive), {len(test)} test pairs, "
          f"{products.num_rows} products; cleaning {cleaning}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    params = load_params()
    prepare(Path(params["data"]["raw_dir"]), float(params["data"]["sample"]), int(params["seed"]))


if __name__ == "__main__":
    run_stage(main)
