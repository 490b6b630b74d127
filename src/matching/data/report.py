"""The data report: rows, cleaning, repairs and missing shares; embedding columns checked batch by batch."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matching.data import contract
from matching.data.cleaning import test_pair_counts
from matching.data.ids import contains
from matching.parallel import ordered_map

Batch = tuple[str, int, pa.RecordBatch]


def _row_label(label: str, offset: int) -> str:
    return label if offset == 0 else f"{label} (batch from row {offset})"


def _name_batch(keep: np.ndarray, item: Batch) -> tuple[dict[str, int], int]:
    """One batch of name vectors checked: what the kept products lack and what was repaired."""
    label, offset, batch = item
    table = pa.Table.from_batches([batch])
    mask = contains(keep, table.column("variantid").to_numpy())
    matrix, repaired = contract.vector_matrix(
        table.column("name_bert_64"), contract.NAME_DIM, _row_label(label, offset), "name_bert_64"
    )
    counted = {"name_bert_missing": int(np.isnan(matrix[mask, 0]).sum()), "name_bert_nan_repaired": repaired}
    return counted, int(mask.sum())


def _photo_batch(keep: np.ndarray, item: Batch) -> tuple[str, int, np.ndarray, dict[str, int], int]:
    """One batch of photo sets checked: where it is, its ids, what the kept products lack and what was
    dropped, and how many kept products it holds."""
    label, offset, batch = item
    main, extra = contract.MAIN_PHOTO, contract.EXTRA_PHOTOS
    table = pa.Table.from_batches([batch])
    ids = contract.check_ids(table, "variantid", _row_label(label, offset), unique=False)
    mask = contains(keep, ids)
    offsets, _, dropped_main = contract.photo_sets(table.column(main), _row_label(label, offset), main, single=True)
    main_missing = int((np.diff(offsets)[mask] == 0).sum())
    offsets, _, dropped_extra = contract.photo_sets(table.column(extra), _row_label(label, offset), extra, single=False)
    counts = np.diff(offsets)[mask]
    stats = {
        "main_photo_missing": main_missing,
        "extra_photos_missing": int((counts == 0).sum()),
        "extra_photos_total": int(counts.sum()),
        "photos_nan_dropped": dropped_main + dropped_extra,
    }
    return label, offset, ids, stats, int(mask.sum())


def scan_vectors(name_batches: Iterable[Batch], photo_batches: Iterable[Batch], keep: np.ndarray) -> dict:
    """Validate name and photo embeddings batch by batch (file label, first row, batch), batches side
    by side (`ordered_map`, file order); count what the kept products lack and what was repaired
    (vectors holding NaN become missing ones)."""
    stats = Counter(
        dict.fromkeys(
            [
                "name_bert_missing",
                "main_photo_missing",
                "extra_photos_missing",
                "extra_photos_total",
                "name_bert_nan_repaired",
                "photos_nan_dropped",
            ],
            0,
        )
    )
    seen_names, seen_photos = 0, 0
    for counted, seen in ordered_map(functools.partial(_name_batch, keep), name_batches):
        stats.update(counted)
        seen_names += seen
    photo_ids, where = [], []  # every id of the photo file(s), and the (file, first row) of each batch
    for label, offset, ids, counted, seen in ordered_map(functools.partial(_photo_batch, keep), photo_batches):
        photo_ids.append(ids)
        where.append((label, offset, len(ids)))
        stats.update(counted)
        seen_photos += seen
    # A repeated product would gain the other row's photos and a negative missing share.
    starts = np.cumsum([0] + [n for _, _, n in where])

    def file_row(position: int) -> tuple[str, int]:
        batch = int(np.searchsorted(starts, position, "right")) - 1
        return where[batch][0], where[batch][1] + position - int(starts[batch])

    contract.check_unique(np.concatenate(photo_ids) if photo_ids else np.empty(0, np.int64), file_row)
    stats["name_bert_missing"] += len(keep) - seen_names
    stats["main_photo_missing"] += len(keep) - seen_photos
    stats["extra_photos_missing"] += len(keep) - seen_photos
    return dict(stats)


def data_report(
    train: pd.DataFrame, test: pd.DataFrame, products: pa.Table, vectors: dict, raw_rows: dict, cleaning: dict
) -> tuple[dict, pd.DataFrame]:
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
        "test_rows": test_pair_counts(test),
        "repaired": {
            "name_bert_64_with_nan_made_missing": vectors["name_bert_nan_repaired"],
            "photos_with_nan_dropped": vectors["photos_nan_dropped"],
            "null_descriptions_left_missing": products.column("description").null_count,
        },
        "missing_share": {k: round(v, 6) for k, v in missing.items()},
        "extra_photos_per_product": round(vectors["extra_photos_total"] / n, 4),
        "level2_categories": len(pc.unique(products.column("category_2").drop_null())),
    }
    plot = pd.DataFrame({"column": list(missing), "missing_share": [round(v, 6) for v in missing.values()]})
    return report, plot
