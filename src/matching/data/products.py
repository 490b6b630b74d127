"""The products table: text, attributes and category levels of the products the pairs name, validated."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from matching.data import contract
from matching.data.ids import contains, positions

CATEGORY_LEVELS = ("1", "2", "3", "4")


def _in_id_order(table: pa.Table, ids: np.ndarray, keep: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    """Rows of `table` whose id is in `keep` (sorted), sorted by id."""
    rows = np.flatnonzero(contains(keep, ids))
    rows = rows[np.argsort(ids[rows], kind="stable")]
    return table.take(pa.array(rows)), ids[rows]


def build_products(
    attributes: pa.Table, ids: np.ndarray, keep: np.ndarray, text: pa.Table, labels: tuple[str, str]
) -> pa.Table:
    """Text, attributes and category levels of the products in `keep`, validated, sorted by id.

    `ids` are the attribute table's ids; `labels` name the attribute and the text file in errors.
    Columns stay Arrow strings (no Python object a row): the real archive has 2.25 M products."""
    label = labels[0]
    for column in ("categories", "characteristic_attributes_mapping"):
        contract.check_strings(attributes, column, label, nullable=True)
    attributes, product_ids = _in_id_order(attributes, ids, keep)
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
    text, text_ids = _in_id_order(text, text_ids, keep)
    # A product without a text row gets null name and description (a null index takes a null).
    rows = positions(text_ids, product_ids)
    text_rows = pa.array(rows, mask=rows < 0)
    columns = {
        "variantid": pa.array(product_ids),
        "attributes": attributes.column("characteristic_attributes_mapping"),
        **{
            f"category_{level}": pa.array([None if v is None else str(v) for v in levels[level]], pa.string())
            for level in CATEGORY_LEVELS
        },
        "name": text.column("name").take(text_rows).cast(pa.string()),
        "description": text.column("description").take(text_rows).cast(pa.string()),
    }
    return pa.table(columns)
