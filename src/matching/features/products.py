"""Everything computed once per product over all products (train and test alike), before any pair.

Parsed attributes, codes, numbers with units, fitted TF-IDF vectorisers, and loaders of the
embedding files and photo sets. Built for 2.25 M products on a 24 GiB machine: texts stay Arrow
strings, a product's attribute and code rows are found by offsets (CSR), and an embedding file or
the photo sets are loaded only while their group runs. What Python loops remain do O(1) work a product.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matching.encoders.tfidf import UNICODE_SPACE
from matching.features.arrays import ItemRows, Source
from matching.features.fitted import TFIDF, FeatureTransforms, category_frequencies, fit_text_vocabulary
from matching.features.tfidf import Tfidf

CATEGORY_LEVELS = ("1", "2", "3", "4")


TOP_KEYS = 8  # per-key equality for this many of the category's most frequent attribute keys


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


@dataclass
class ProductTables:
    """Per-product inputs of the pair features, rows in `ids` order (sorted by variantid)."""

    ids: np.ndarray  # variantid of each row
    categories: dict[str, np.ndarray]  # level -> category code per product (-1: none)
    category_names: dict[str, np.ndarray]  # level -> name of each code
    category_frequency: dict[str, np.ndarray]  # level -> share of the fitted products in each code's category
    names: np.ndarray  # normalised names (Python strings: rapidfuzz and substring tests)
    name_lengths: np.ndarray
    texts: dict[str, pa.Array]  # normalised name, attribute values, description ("" if none)
    descriptions_present: np.ndarray
    attributes: ItemRows  # product, key, value (codes), number (plain numeric value or NaN)
    top_keys: pd.DataFrame  # category (level-2 code), key (code), slot: the category's most frequent keys
    codes: ItemRows  # product, code (codes)
    name_numbers: ItemRows  # product, item (codes of the numbers written in the name)
    code_strings: np.ndarray  # per product: its codes joined by spaces
    code_texts: np.ndarray  # text of each code
    numbers: dict[str, np.ndarray]  # quantity -> per product first value in base units (NaN if none)
    colours: ItemRows  # product, item (colour codes)
    brands: np.ndarray  # per product brand code (-1 if none)
    brand_text: np.ndarray  # per product normalised brand
    tfidf: dict[str, Tfidf] = field(default_factory=dict)
    transforms: FeatureTransforms | None = None  # what was fitted (or loaded) to build these tables
    embeddings: Mapping[str, Source] = field(default_factory=dict)
    photo_sets: Source | None = None

    @property
    def n(self) -> int:
        return len(self.ids)

    def flat_text(self, rows: np.ndarray) -> list[str]:
        """Name, attribute values and description of each row, separators removed (made per chunk
        of pairs: for all 2.25 M products at once it would be 2 GB)."""
        taken = [self.texts[k].take(pa.array(np.maximum(rows, 0))) for k in ("name", "attributes", "description")]
        return pc.replace_substring_regex(pc.binary_join_element_wise(*taken, " "), SEPARATORS.pattern, "").to_pylist()


def _attribute_rows(mappings: pa.Array, chunk: int = 65_536) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, pa.Array]:
    """Attribute rows as integer codes (product, key, value), the distinct keys and values, and each
    product's values joined by spaces. Values of a key are normalised, sorted and joined by " | "."""
    keys: dict[str, int] = {}
    values: dict[str, int] = {}
    product, key, value = array("q"), array("q"), array("q")
    joined: list[pa.Array] = []
    for start in range(0, len(mappings), chunk):
        texts = []
        for row, text in enumerate(mappings.slice(start, chunk).to_pylist(), start):
            parts = []
            for name, items in json.loads(text).items() if text else ():
                rendered = " | ".join(sorted(normalise(str(v)) for v in items))
                product.append(row)
                key.append(keys.setdefault(name, len(keys)))
                value.append(values.setdefault(rendered, len(values)))
                parts.append(rendered)
            texts.append(" ".join(parts))
        joined.append(pa.array(texts, pa.string()))
    frame = pd.DataFrame(
        {
            "product": np.frombuffer(product, np.int64),
            "key": np.frombuffer(key, np.int64),
            "value": np.frombuffer(value, np.int64),
        }
    )
    key_text, value_text = np.array(list(keys), dtype=object), np.array(list(values), dtype=object)
    value_number = pd.to_numeric(
        pd.Series(value_text, dtype=object).str.replace(",", ".", regex=False), errors="coerce"
    ).to_numpy(np.float64)
    frame["number"] = value_number[frame["value"].to_numpy()] if len(frame) else np.empty(0)
    all_joined = pa.concat_arrays(joined) if joined else pa.array([], pa.string())
    return frame, key_text, value_text, all_joined


def _numbers(
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
    # Then the first number with a unit of the quantity in the name and attribute values: one RE2 scan a quantity.
    for quantity in QUANTITIES:
        units = [u for u, (q, _) in UNITS.items() if q == quantity]
        match = pc.extract_regex(texts, number_unit_pattern(units))
        number = pc.replace_substring(pc.struct_field(match, "number"), ",", ".").cast(pa.float64())
        unit = pc.index_in(pc.utf8_lower(pc.struct_field(match, "unit")), pa.array(units))
        number, unit = number.to_numpy(zero_copy_only=False), unit.to_numpy(zero_copy_only=False)
        factor = np.array([UNITS[u][1] for u in units], dtype=np.float64)
        fill = np.isnan(found[quantity]) & ~np.isnan(number)
        found[quantity][fill] = number[fill] * factor[unit[fill].astype(np.int64)]
    return found


def _codes(texts: pa.Array) -> tuple[ItemRows, np.ndarray, np.ndarray]:
    """Letter-and-digit tokens (model numbers, articles) of each product's name and attribute values,
    separators removed; all-digit tokens count from 4 digits on, decimals (prices) not at all.
    Returns the rows (product, code), each product's distinct codes sorted and joined by spaces, and
    each code's text."""
    runs = pc.split_pattern_regex(texts, CODE_RUN_SEPARATORS)
    product = pc.list_parent_indices(runs)
    run = pc.utf8_trim(pc.list_flatten(runs), "-./")
    keep = pc.and_(
        pc.and_(pc.greater_equal(pc.utf8_length(run), 2), pc.match_substring_regex(run, r"\p{Nd}")),
        pc.invert(pc.match_substring_regex(run, DECIMAL)),
    )
    product, code = product.filter(keep), pc.replace_substring_regex(run.filter(keep), r"[\-./_]", "")
    length = pc.utf8_length(code)
    long_enough = pc.or_(pc.greater_equal(length, 4), pc.and_(pc.equal(length, 3), pc.invert(pc.utf8_is_digit(code))))
    found = pa.table({"product": product.filter(long_enough), "code": code.filter(long_enough)})
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


def _name_numbers(names: pa.Array) -> ItemRows:
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


def _category_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    encoded = pc.dictionary_encode(arrow_strings(column))
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, np.array(encoded.dictionary.to_pylist(), dtype=object)


def _top_keys(attributes: pd.DataFrame, category: np.ndarray, category_names: np.ndarray, key_text: np.ndarray):
    """The TOP_KEYS most frequent attribute keys of each level-2 category, ranked (ties by first appearance),
    by name: (category, key, slot)."""
    keyed = pd.DataFrame({"category": category[attributes["product"].to_numpy()], "key": attributes["key"].to_numpy()})
    keyed = keyed[keyed["category"] >= 0]
    ranked = keyed.groupby(["category", "key"]).size().rename("count").reset_index()
    ranked = ranked.sort_values(["category", "count", "key"], ascending=[True, False, True])
    ranked["slot"] = ranked.groupby("category").cumcount()
    ranked = ranked[ranked["slot"] < TOP_KEYS]
    return pd.DataFrame(
        {
            "category": category_names[ranked["category"].to_numpy()].astype(str),
            "key": key_text[ranked["key"].to_numpy()].astype(str),
            "slot": ranked["slot"].to_numpy(np.int64),
        }
    )


def _codes_of(names: pd.Series, known: np.ndarray) -> np.ndarray:
    """Positions of `names` in `known` (-1 where absent)."""
    return (
        pc.index_in(pa.array(names.to_numpy(dtype=object), pa.string()), pa.array(known, pa.string()))
        .fill_null(-1)
        .to_numpy(zero_copy_only=False)
        .astype(np.int64)
    )


def product_tables(
    products: pd.DataFrame,
    embeddings: Mapping[str, Source],
    photo_sets: Source | None,
    max_features: int,
    fit_sample: int = 200_000,
    seed: int = 0,
    transforms: FeatureTransforms | None = None,
) -> ProductTables:
    """Per-product inputs of the pair features. TF-IDF vocabularies, category shares and top keys come from
    `transforms` when given (saved by an earlier run), else are fitted on these products."""
    if not products["variantid"].is_monotonic_increasing:  # prepare writes them sorted: no copy then
        products = products.sort_values("variantid", kind="stable")
    products = products.reset_index(drop=True)
    n = len(products)
    names_arrow = normalised(arrow_strings(products["name"]))
    names = np.array(names_arrow.to_pylist(), dtype=object)
    description_text = normalised(arrow_strings(products["description"]))
    attributes, key_text, value_text, attribute_text = _attribute_rows(arrow_strings(products["attributes"]))

    categories, category_names = {}, {}
    for level in CATEGORY_LEVELS:
        categories[level], category_names[level] = _category_codes(products[f"category_{level}"])

    colour_rows = (
        attributes[np.array([bool(COLOUR_KEY.search(k)) for k in key_text], dtype=bool)[attributes["key"]]]
        if len(attributes)
        else attributes
    )
    colour_values = pd.Series(value_text[colour_rows["value"].to_numpy()], dtype=object).str.split(r" \| ")
    colours = pd.DataFrame({"product": colour_rows["product"].to_numpy(), "item": colour_values.to_numpy()}).explode(
        "item"
    )
    colours = colours.assign(item=pd.factorize(colours["item"])[0]).astype({"product": np.int64})
    brand_rows = (
        attributes[
            np.array([bool(BRAND_KEY.search(k)) for k in key_text], dtype=bool)[attributes["key"]]
        ].drop_duplicates("product")
        if len(attributes)
        else attributes
    )
    brand_text = np.full(n, "", dtype=object)
    brand_text[brand_rows["product"].to_numpy()] = value_text[brand_rows["value"].to_numpy()]
    brands = np.full(n, -1, dtype=np.int64)
    brands[brand_rows["product"].to_numpy()] = brand_rows["value"].to_numpy()  # one value code, one brand text

    name_and_attributes = pc.binary_join_element_wise(names_arrow, attribute_text, " ")
    codes, code_strings, code_texts = _codes(name_and_attributes)
    texts = {"name": names_arrow, "attributes": attribute_text, "description": description_text}
    if transforms is None:
        transforms = FeatureTransforms(
            {
                name: fit_text_vocabulary(texts[source], analyzer, ngrams, max_features, fit_sample, seed)
                for name, (source, analyzer, ngrams) in TFIDF.items()
            },
            category_frequencies(categories, category_names),
            _top_keys(attributes, categories["2"], category_names["2"], key_text),
        )
    frequency = {level: np.zeros(len(known), np.float32) for level, known in category_names.items()}
    fitted = transforms.category_frequency
    for level in CATEGORY_LEVELS:
        at_level = fitted[fitted["level"] == level]
        found = _codes_of(at_level["category"], category_names[level])
        frequency[level][found[found >= 0]] = at_level["frequency"].to_numpy(np.float32)[found >= 0]
    top_keys = transforms.top_keys.assign(
        category=_codes_of(transforms.top_keys["category"], category_names["2"]),
        key=_codes_of(transforms.top_keys["key"], key_text),
    )
    top_keys = top_keys[(top_keys["category"] >= 0) & (top_keys["key"] >= 0)].reset_index(drop=True)
    return ProductTables(
        ids=products["variantid"].to_numpy(np.int64),
        categories=categories,
        category_names=category_names,
        category_frequency=frequency,
        names=names,
        name_lengths=pc.utf8_length(names_arrow).to_numpy().astype(np.float32),
        texts=texts,
        descriptions_present=products["description"].notna().to_numpy(np.float32),
        attributes=ItemRows.of(attributes, n),
        top_keys=top_keys,
        codes=codes,
        name_numbers=_name_numbers(names_arrow),
        code_strings=code_strings,
        code_texts=code_texts,
        numbers=_numbers(name_and_attributes, attributes, key_text, value_text),
        colours=ItemRows.of(colours, n),
        brands=brands,
        brand_text=brand_text,
        tfidf={name: Tfidf(transforms.tfidf[name], texts[source]) for name, (source, _, _) in TFIDF.items()},
        transforms=transforms,
        embeddings=embeddings,
        photo_sets=photo_sets,
    )
