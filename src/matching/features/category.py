"""Feature group `category` (`cat_`): equality of each category level, frequency of the category."""

from __future__ import annotations

import numpy as np

from matching.features.arrays import Arrays, take
from matching.features.products import CATEGORY_LEVELS, ProductTables


def category_group(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    """Equality of each category level, and how common the first product's category is."""
    columns = {}
    for level in CATEGORY_LEVELS:
        codes = tables.categories[level].astype(np.float32)
        frequency = np.append(tables.category_frequency[level], np.float32(np.nan))  # code -1 -> NaN
        codes[codes < 0] = np.nan
        a, b = take(codes, rows[0]), take(codes, rows[1])
        columns[f"cat_{level}_equal"] = np.where(np.isnan(a) | np.isnan(b), np.nan, (a == b).astype(np.float32))
        columns[f"cat_{level}_frequency"] = frequency[np.where(np.isnan(a), -1, a).astype(np.int64)]
    return columns
