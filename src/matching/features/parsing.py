"""Parsers of product texts: units and their factors, the regexes of codes, numbers, colours and brands,
and the attribute, code and number rows they give (integer codes and offsets, vectorised over Arrow)."""

from __future__ import annotations

import functools
import json
import re
from array import array

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matching.encoders.tfidf import UNICODE_SPACE
from matching.features.arrays import ItemRows
from matching.parallel import arrow_chunks, in_processes, ordered_map

# A code is a run of word characters and - . / holding a digit, without the - . / at its ends (RE2 has no
# lookarounds, so runs are split out and trimmed; Python's \w is [\pL\pN_]).
CODE_RUN_SEPARATORS = r"[^\pL\pN_\-./]+"


SEPARATORS = re.compile(r"[\-./_\s]")


DECIMAL = r"^\p{Nd}+[.,]\p{Nd}+$"  # a price or a measure, not a code


UNITS = {  # unit -> (quantity, factor to the base unit)
    "г": ("weight", 1),
    "гр": ("weight", 1),
    "g": ("weight", 1),
    "кг": ("weight", 1000),
    "kg": ("weight", 1000),
    "мг": ("weight", 0.001),
    "mg": ("weight", 0.001),
    "lb": ("weight", 453.6),
    "lbs": ("weight", 453.6),
    "мл": ("volume", 1),
    "ml": ("volume", 1),
    "л": ("volume", 1000),
    "l": ("volume", 1000),
    "oz": ("volume", 29.57),
    "мм": ("length", 1),
    "mm": ("length", 1),
    "см": ("length", 10),
    "cm": ("length", 10),
    "м": ("length", 1000),
    "m": ("length", 1000),
    "дюйм": ("length", 25.4),
    "inch": ("length", 25.4),
    "in": ("length", 25.4),
    "шт": ("count", 1),
    "pcs": ("count", 1),
    "pack": ("count", 1),
    "pk": ("count", 1),
    "гб": ("memory", 1),
    "gb": ("memory", 1),
    "тб": ("memory", 1024),
    "tb": ("memory", 1024),
    "мб": ("memory", 1 / 1024),
    "mb": ("memory", 1 / 1024),
    "вт": ("power", 1),
    "w": ("power", 1),
    "мач": ("charge", 1),
    "mah": ("charge", 1),
}


QUANTITIES = sorted({q for q, _ in UNITS.values()})


def number_unit_pattern(units: list[str]) -> str:
    """RE2 pattern of a number followed by one of `units` as a whole word (the boundary is consumed:
    RE2 has no lookahead); groups `number` and `unit`."""
    alternatives = "|".join(sorted(map(re.escape, units), key=len, reverse=True))
    return rf"(?i)(?P<number>[0-9]+(?:[.,][0-9]+)?){UNICODE_SPACE}*(?P<unit>{alternatives})(?:[^\pL\pN_]|$)"


KEY_UNIT = re.compile(
    r",\s*(" + "|".join(sorted(map(re.escape, UNITS), key=len, reverse=True)) + r")\s*$", re.IGNORECASE
)


COLOUR_KEY = re.compile(r"цвет|colou?r", re.IGNORECASE)


BRAND_KEY = re.compile(r"бренд|brand|manufacturer|производитель", re.IGNORECASE)


def normalise(text: str) -> str:
    return text.lower().replace("ё", "е")


def normalised(texts: pa.Array) -> pa.Array:
    """`normalise` over an Arrow string array in C++; a null becomes ""."""
    return pc.replace_substring(pc.utf8_lower(texts.fill_null("")), "ё", "е")


def arrow_strings(column: pd.Series) -> pa.Array:
    array = pa.array(column, type=pa.string(), from_pandas=True)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


ATTRIBUTE_CHUNK = 65_536  # products whose attribute JSON a worker process parses at once


def parse_attributes(mappings: pa.Array) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, pa.Array]:
    """Attribute rows as integer codes (product, key, value), the distinct keys and values, and each
    product's values joined by spaces. Values of a key are normalised, sorted and joined by " | ".
    Keys and values are numbered in order of first appearance. Parsing is Python work: more than one
    chunk goes to worker processes (`in_processes`), whose own numbering is mapped onto one here."""
    parts = in_processes(_parsed_attributes, (rows for _, rows in arrow_chunks(mappings, ATTRIBUTE_CHUNK)))
    keys: dict[str, int] = {}
    values: dict[str, int] = {}
    product, key, value, joined = [], [], [], []
    first_row = 0
    for rows, key_codes, value_codes, chunk_keys, chunk_values, texts in parts:
        # A chunk's keys and values in its order of first appearance, numbered on after the earlier chunks'.
        key_map = np.array([keys.setdefault(k, len(keys)) for k in chunk_keys], np.int64)
        value_map = np.array([values.setdefault(v, len(values)) for v in chunk_values], np.int64)
        product.append(rows + first_row)
        key.append(key_map[key_codes])
        value.append(value_map[value_codes])
        joined.append(texts)
        first_row += len(texts)
    frame = pd.DataFrame(
        {
            "product": np.concatenate(product) if product else np.zeros(0, np.int64),
            "key": np.concatenate(key) if key else np.zeros(0, np.int64),
            "value": np.concatenate(value) if value else np.zeros(0, np.int64),
        }
    )
    key_text, value_text = np.array(list(keys), dtype=object), np.array(list(values), dtype=object)
    value_number = pd.to_numeric(
        pd.Series(value_text, dtype=object).str.replace(",", ".", regex=False), errors="coerce"
    ).to_numpy(np.float64)
    frame["number"] = value_number[frame["value"].to_numpy()] if len(frame) else np.empty(0)
    all_joined = pa.concat_arrays(joined) if joined else pa.array([], pa.string())
    return frame, key_text, value_text, all_joined


def _parsed_attributes(mappings: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, list, list, pa.Array]:
    """One chunk's attribute rows (row in the chunk, key code, value code), its keys and values in order
    of first appearance, and each product's values joined by spaces."""
    keys: dict[str, int] = {}
    values: dict[str, int] = {}
    product, key, value = array("q"), array("q"), array("q")
    texts = []
    for row, text in enumerate(mappings.to_pylist()):
        parts = []
        for name, items in json.loads(text).items() if text else ():
            rendered = " | ".join(sorted(normalise(str(v)) for v in items))
            product.append(row)
            key.append(keys.setdefault(name, len(keys)))
            value.append(values.setdefault(rendered, len(values)))
            parts.append(rendered)
        texts.append(" ".join(parts))
    codes = [np.frombuffer(codes, np.int64) if len(codes) else np.zeros(0, np.int64) for codes in (product, key, value)]
    return codes[0], codes[1], codes[2], list(keys), list(values), pa.array(texts, pa.string())


def parse_numbers(
    texts: pa.Array, attributes: pd.DataFrame, key_text: np.ndarray, value_text: np.ndarray
) -> dict[str, np.ndarray]:
    """First value of each quantity per product: from attribute keys with a unit (`Вес товара, г`),
    then from `texts` (name and attribute values) with a unit (`500 г`, `2 l`)."""
    n = len(texts)
    found: dict[str, np.ndarray] = {q: np.full(n, np.nan, dtype=np.float32) for q in QUANTITIES}
    key_units = [KEY_UNIT.search(k) for k in key_text]
    key_quantity = np.array([UNITS[u.group(1).lower()][0] if u else "" for u in key_units], dtype=object)
    key_factor = np.array([UNITS[u.group(1).lower()][1] if u else np.nan for u in key_units], dtype=np.float64)
    plain = re.compile(r"\s*(\d+(?:[.,]\d+)?)\s*$")
    value_plain = np.array(
        [float(m.group(1).replace(",", ".")) if (m := plain.match(v)) else np.nan for v in value_text], dtype=np.float64
    )
    if len(attributes):
        keyed = pd.DataFrame(
            {
                "product": attributes["product"].to_numpy(),
                "quantity": key_quantity[attributes["key"].to_numpy()],
                "value": value_plain[attributes["value"].to_numpy()] * key_factor[attributes["key"].to_numpy()],
            }
        )
        keyed = keyed[(keyed["quantity"] != "") & keyed["value"].notna()].drop_duplicates(["product", "quantity"])
        for quantity, group in keyed.groupby("quantity"):
            found[quantity][group["product"].to_numpy()] = group["value"].to_numpy(np.float32)
    # Then the first number with a unit of the quantity in the name and attribute values: one RE2 scan a
    # quantity, the quantities side by side.
    for quantity, value in zip(QUANTITIES, ordered_map(functools.partial(_quantity_in_texts, texts), QUANTITIES)):
        fill = np.isnan(found[quantity]) & ~np.isnan(value)
        found[quantity][fill] = value[fill]
    return found


def _quantity_in_texts(texts: pa.Array, quantity: str) -> np.ndarray:
    """Each text's first number with a unit of `quantity`, in the quantity's base unit (NaN: none)."""
    units = [u for u, (q, _) in UNITS.items() if q == quantity]
    match = pc.extract_regex(texts, number_unit_pattern(units))
    number = pc.replace_substring(pc.struct_field(match, "number"), ",", ".").cast(pa.float64())
    unit = pc.index_in(pc.utf8_lower(pc.struct_field(match, "unit")), pa.array(units))
    number, unit = number.to_numpy(zero_copy_only=False), unit.to_numpy(zero_copy_only=False)
    factor = np.array([UNITS[u][1] for u in units], dtype=np.float64)
    found = ~np.isnan(number)
    value = np.full(len(number), np.nan)
    value[found] = number[found] * factor[unit[found].astype(np.int64)]
    return value


CODE_CHUNK = 262_144  # texts whose code candidates one thread finds at once


def _code_candidates(first_row_texts: tuple[int, pa.Array]) -> tuple[pa.Array, pa.Array]:
    """(product row, code) of every letter-and-digit token of a run of texts, in text order."""
    first_row, texts = first_row_texts
    runs = pc.split_pattern_regex(texts, CODE_RUN_SEPARATORS)
    product = pc.add(pc.list_parent_indices(runs), pa.scalar(first_row, pa.int64()))
    run = pc.utf8_trim(pc.list_flatten(runs), "-./")
    keep = pc.and_(
        pc.and_(pc.greater_equal(pc.utf8_length(run), 2), pc.match_substring_regex(run, r"\p{Nd}")),
        pc.invert(pc.match_substring_regex(run, DECIMAL)),
    )
    product, code = product.filter(keep), pc.replace_substring_regex(run.filter(keep), r"[\-./_]", "")
    length = pc.utf8_length(code)
    long_enough = pc.or_(pc.greater_equal(length, 4), pc.and_(pc.equal(length, 3), pc.invert(pc.utf8_is_digit(code))))
    return product.filter(long_enough), code.filter(long_enough)


def parse_codes(texts: pa.Array) -> tuple[ItemRows, np.ndarray, np.ndarray]:
    """Letter-and-digit tokens (model numbers, articles) of each product's name and attribute values,
    separators removed; all-digit tokens count from 4 digits on, decimals (prices) not at all.
    Returns the rows (product, code), each product's distinct codes sorted and joined by spaces, and
    each code's text."""
    # Each text's candidates depend on that text alone: row chunks side by side (Arrow's regex kernels
    # run on the calling thread), in row order.
    chunks = list(ordered_map(_code_candidates, arrow_chunks(texts, CODE_CHUNK, copy=False)))
    found = pa.table(
        {
            "product": pa.concat_arrays([product for product, _ in chunks]) if chunks else pa.array([], pa.int64()),
            "code": pa.concat_arrays([code for _, code in chunks]) if chunks else pa.array([], texts.type),
        }
    )
    found = found.group_by(["product", "code"]).aggregate([]).sort_by([("product", "ascending"), ("code", "ascending")])
    encoded = pc.dictionary_encode(found["code"]).combine_chunks()  # codes numbered in order of first appearance
    product = found["product"].to_numpy().astype(np.int64)
    per_product = np.searchsorted(product, np.arange(len(texts) + 1)).astype(np.int32)
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(per_product), found["code"].combine_chunks()), " ")
    frame = pd.DataFrame({"product": product, "code": encoded.indices.to_numpy().astype(np.int64)})
    return (
        ItemRows.of(frame, len(texts)),
        joined.to_numpy(zero_copy_only=False),
        encoded.dictionary.to_numpy(zero_copy_only=False),
    )


def parse_name_numbers(names: pa.Array) -> ItemRows:
    """The numbers written in each name (versions, sizes, counts: "cs3" gives 3, "3.0" gives 3)."""
    lists = pc.split_pattern_regex(names, r"[^\d.,]+")
    flat = pc.list_flatten(lists)
    owner = pc.list_parent_indices(lists).to_numpy()
    keep = pc.match_substring_regex(flat, r"^\d").to_numpy(zero_copy_only=False)
    numbers = pd.to_numeric(
        pd.Series(flat.filter(pa.array(keep)).to_pylist(), dtype=object)
        .str.strip(".,")
        .str.replace(",", ".", regex=False),
        errors="coerce",
    )
    frame = pd.DataFrame({"product": owner[keep], "item": numbers.to_numpy()}).dropna().drop_duplicates()
    return ItemRows.of(frame.assign(item=pd.factorize(frame["item"])[0]), len(names))


def codes_of(names: pd.Series, known: np.ndarray) -> np.ndarray:
    """Positions of `names` in `known` (-1 where absent)."""
    return (
        pc.index_in(pa.array(names.to_numpy(dtype=object), pa.string()), pa.array(known, pa.string()))
        .fill_null(-1)
        .to_numpy(zero_copy_only=False)
        .astype(np.int64)
    )
