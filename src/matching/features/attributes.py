"""Feature group `attributes` (`attr_`): shared keys and values, the category's top keys one by one,
numbers with units, colour and brand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from matching.features.arrays import Arrays, in_chunks, jaccard, ratio, shared_counts, take
from matching.features.products import TOP_KEYS, ProductTables


def attribute_group(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    """Shared keys, equal values, the category's top keys one by one, numbers with units, colour, brand."""
    return in_chunks(rows, lambda chunk: _attribute_chunk(chunk, tables))


def _attribute_chunk(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    counts = shared_counts(rows, tables.attributes, "key", value="value")
    columns = {
        "attr_shared_keys": counts["shared"],
        "attr_key_jaccard": jaccard(counts),
        "attr_equal_value_share": ratio(counts["equal"], counts["shared"]),
        "attr_equal_values": counts["equal"],
        "attr_keys_min": np.minimum(counts["a"], counts["b"]),
        "attr_keys_max": np.maximum(counts["a"], counts["b"]),
        "attr_value_tfidf_cos": tables.tfidf["attributes_char"].cosine(rows),
    }
    columns.update(_top_key_equality(rows, tables))
    for quantity, values in tables.numbers.items():
        a, b = take(values, rows[0]), take(values, rows[1])
        columns[f"attr_{quantity}_relative_difference"] = ratio(np.abs(a - b), np.maximum(np.abs(a), np.abs(b)))
    colour = shared_counts(rows, tables.colours, "item")
    columns["attr_colour_match"] = np.where(
        (colour["a"] > 0) & (colour["b"] > 0), (colour["shared"] > 0).astype(np.float32), np.nan
    )
    brand_a, brand_b = take(tables.brands.astype(np.float32), rows[0]), take(tables.brands.astype(np.float32), rows[1])
    known = (brand_a >= 0) & (brand_b >= 0)
    columns["attr_brand_equal"] = np.where(known, (brand_a == brand_b).astype(np.float32), np.nan)
    columns["attr_brand_in_other_name"] = _brand_in_other_name(rows, tables)
    return columns


def _top_key_equality(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    """Equality of the k-th most frequent attribute key of the pair's level-2 category (NaN if a side lacks it)."""
    category = tables.categories["2"]
    pairs = pd.DataFrame({"pair": np.arange(len(rows[0])), "category": category[np.maximum(rows[0], 0)]})
    slots = pairs.merge(tables.top_keys, on="category")
    for side, product_rows in enumerate(rows):
        values = tables.attributes.of_pairs(product_rows, ["key", "value", "number"]).rename(
            columns={"value": f"value{side}", "number": f"number{side}"}
        )
        slots = slots.merge(values, on=["pair", "key"], how="left")
    equal = np.where(
        slots["value0"].isna() | slots["value1"].isna(), np.nan, (slots["value0"] == slots["value1"]).astype(np.float32)
    )
    # Plain numbers (a price, a size without unit) compare by relative difference, not by equality.
    a, b = slots["number0"].to_numpy(np.float32), slots["number1"].to_numpy(np.float32)
    relative = ratio(np.abs(a - b), np.maximum(np.abs(a), np.abs(b)))
    columns = {}
    for slot in range(TOP_KEYS):
        mask = (slots["slot"] == slot).to_numpy()
        for name, values in (
            (f"attr_top{slot + 1}_key_equal", equal),
            (f"attr_top{slot + 1}_key_relative_difference", relative),
        ):
            column = np.full(len(rows[0]), np.nan, dtype=np.float32)
            column[slots["pair"].to_numpy()[mask]] = values[mask]
            columns[name] = column
    return columns


def _brand_in_other_name(rows: list[np.ndarray], tables: ProductTables) -> np.ndarray:
    """Whether either product's brand is written in the other's name; NaN if neither has a brand."""
    out = np.full(len(rows[0]), np.nan, dtype=np.float32)
    brand, names = tables.brand_text, tables.names
    for i, (a, b) in enumerate(zip(rows[0].tolist(), rows[1].tolist())):
        if a >= 0 and b >= 0 and (brand[a] or brand[b]):
            out[i] = float(bool(brand[a]) and brand[a] in names[b] or bool(brand[b]) and brand[b] in names[a])
    return out
