"""The products table: text, attributes and category levels of the products the pairs name, validated."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from matching.data import contract
from matching.data.ids import contains, positions
from matching.parallel import ordered_map

CATEGORY_LEVELS = ("1", "2", "3", "4")


def _rows_in_id_order(ids: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Rows of a table (whose ids are `ids`) with an id in `keep` (sorted), in id order. Sorted ids are
    looked up in `keep` in order, which the caches favour over lookups in the rows' order."""
    order = np.argsort(ids, kind="stable")
    return order[contains(keep, ids[order])]


def _taken(table: pa.Table, rows: pa.Array) -> pa.Table:
    """`table.take(rows)` with its columns taken side by side: Arrow takes a table's columns one by one."""
    return pa.table(list(ordered_map(lambda column: column.take(rows), table.columns)), schema=table.schema)


def build_products(
    attributes: pa.Table, ids: np.ndarray, keep: np.ndarray, text: pa.Table, labels: tuple[str, str]
) -> pa.Table:
    """Text, attributes and category levels of the products in `keep`, validated, sorted by id.

    `ids` are the attribute table's ids; `labels` name the attribute and the text file in errors.
    Columns stay Arrow strings (no Python object a row): the real archive has 2.25 M products."""
    label = labels[0]
    for column in ("categories", "characteristic_attributes_mapping"):
        contract.check_strings(attributes, column, label, nullable=True)
    rows = _rows_in_id_order(ids, keep)
    product_ids = ids[rows]
    attributes = _taken(attributes.select(["categories", "characteristic_attributes_mapping"]), pa.array(rows))
    levels = contract.check_json_objects(
        attributes.column("categories"), label, "categories", list_values=False, keep_keys=CATEGORY_LEVELS
    )
    contract.check_json_objects(
        attributes.column("characteristic_attributes_mapping"),
        label,
        "characteristic_attributes_mapping",
        list_values=True,
    )

    label = labels[1]
    text_ids = contract.check_ids(text, "variantid", label, unique=True)
    contract.check_strings(text, "name", label, nullable=True)
    contract.check_strings(text, "description", label, nullable=True)
    rows = _rows_in_id_order(text_ids, keep)
    # A product without a text row gets null name and description (a null index takes a null).
    at = positions(text_ids[rows], product_ids)
    found = at >= 0
    text_rows = np.zeros(len(at), np.int64)
    text_rows[found] = rows[at[found]]
    text = _taken(text.select(["name", "description"]), pa.array(text_rows, mask=~found))
    columns = {
        "variantid": pa.array(product_ids),
        "attributes": attributes.column("characteristic_attributes_mapping"),
        **{f"category_{level}": levels[level] for level in CATEGORY_LEVELS},
        "name": text.column("name").cast(pa.string()),
        "description": text.column("description").cast(pa.string()),
    }
    return pa.table(columns)
