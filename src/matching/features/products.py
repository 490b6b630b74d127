"""Everything computed once per product over all products (train and test alike), before any pair.

Parsed attributes, codes, numbers with units (the parsers: `parsing`), fitted TF-IDF vectorisers, and loaders of the
embedding files and photo sets. Built for 2.25 M products on a 24 GiB machine: texts stay Arrow
strings, a product's attribute and code rows are found by offsets (CSR), and an embedding file or
the photo sets are loaded only while their group runs. What Python loops remain do O(1) work a product.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from matching.features.arrays import ItemRows, Source
from matching.features.fitted import TFIDF, FeatureTransforms, category_frequencies, fit_text_vocabulary
from matching.features.parsing import (
    BRAND_KEY,
    COLOUR_KEY,
    SEPARATORS,
    arrow_strings,
    codes_of,
    normalised,
    parse_attributes,
    parse_codes,
    parse_name_numbers,
    parse_numbers,
)
from matching.features.tfidf import Tfidf
from matching.parallel import steps_side_by_side

CATEGORY_LEVELS = ("1", "2", "3", "4")
TOP_KEYS = 8  # per-key equality for this many of the category's most frequent attribute keys


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


def _attribute_rows_of(attributes: pd.DataFrame, key_text: np.ndarray, key: re.Pattern) -> pd.DataFrame:
    """The attribute rows whose key matches `key`."""
    if not len(attributes):
        return attributes
    return attributes[np.array([bool(key.search(k)) for k in key_text], dtype=bool)[attributes["key"]]]


def _colours(attributes: pd.DataFrame, key_text: np.ndarray, value_text: np.ndarray) -> pd.DataFrame:
    """(product, colour code) rows: every value of a colour attribute, split on " | "."""
    rows = _attribute_rows_of(attributes, key_text, COLOUR_KEY)
    values = pd.Series(value_text[rows["value"].to_numpy()], dtype=object).str.split(r" \| ")
    colours = pd.DataFrame({"product": rows["product"].to_numpy(), "item": values.to_numpy()}).explode("item")
    return colours.assign(item=pd.factorize(colours["item"])[0]).astype({"product": np.int64})


def _brands(
    attributes: pd.DataFrame, key_text: np.ndarray, value_text: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each product's brand as a value code (-1 for none) and as text ("" for none): its first brand attribute."""
    rows = _attribute_rows_of(attributes, key_text, BRAND_KEY).drop_duplicates("product")
    brand_text = np.full(n, "", dtype=object)
    brand_text[rows["product"].to_numpy()] = value_text[rows["value"].to_numpy()]
    brands = np.full(n, -1, dtype=np.int64)
    brands[rows["product"].to_numpy()] = rows["value"].to_numpy()  # one value code, one brand text
    return brands, brand_text


def _category_frequency(fitted: pd.DataFrame, category_names: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each level's fitted category shares by this table's category codes (0 for a category not fitted)."""
    frequency = {level: np.zeros(len(known), np.float32) for level, known in category_names.items()}
    for level in CATEGORY_LEVELS:
        at_level = fitted[fitted["level"] == level]
        found = codes_of(at_level["category"], category_names[level])
        frequency[level][found[found >= 0]] = at_level["frequency"].to_numpy(np.float32)[found >= 0]
    return frequency


def _coded_top_keys(top_keys: pd.DataFrame, category_names: np.ndarray, key_text: np.ndarray) -> pd.DataFrame:
    """The fitted top keys by this table's category and key codes; those it does not hold are dropped."""
    coded = top_keys.assign(
        category=codes_of(top_keys["category"], category_names), key=codes_of(top_keys["key"], key_text)
    )
    return coded[(coded["category"] >= 0) & (coded["key"] >= 0)].reset_index(drop=True)


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
    fit = transforms is None
    # Independent steps side by side while the attributes' JSON is parsed (in worker processes): the
    # names and descriptions normalised and their vocabularies fitted (Arrow work, off the GIL).
    with steps_side_by_side() as pool:
        parsed = pool.submit(parse_attributes, arrow_strings(products["attributes"]))
        names_arrow = normalised(arrow_strings(products["name"]))
        description = pool.submit(normalised, arrow_strings(products["description"]))
        name_numbers = pool.submit(parse_name_numbers, names_arrow)
        vocabularies = {}
        if fit:
            sources = {"name": names_arrow, "description": description.result()}
            for name, (source, analyzer, ngrams) in TFIDF.items():
                if source in sources:
                    vocabularies[name] = pool.submit(
                        fit_text_vocabulary, sources[source], analyzer, ngrams, max_features, fit_sample, seed
                    )
        names = np.array(names_arrow.to_pylist(), dtype=object)
        categories, category_names = {}, {}
        for level in CATEGORY_LEVELS:
            categories[level], category_names[level] = _category_codes(products[f"category_{level}"])
        attributes, key_text, value_text, attribute_text = parsed.result()

    texts = {"name": names_arrow, "attributes": attribute_text, "description": description.result()}
    name_and_attributes = pc.binary_join_element_wise(names_arrow, attribute_text, " ")
    # What needs the parsed attributes, side by side too: the Arrow scans for codes and numbers (off
    # the GIL) beside the steps in Python here.
    with steps_side_by_side() as pool:
        code_items = pool.submit(parse_codes, name_and_attributes)
        numbers = pool.submit(parse_numbers, name_and_attributes, attributes, key_text, value_text)
        if fit:
            for name, (source, analyzer, ngrams) in TFIDF.items():
                if name not in vocabularies:
                    vocabularies[name] = pool.submit(
                        fit_text_vocabulary, texts[source], analyzer, ngrams, max_features, fit_sample, seed
                    )
        colours = ItemRows.of(_colours(attributes, key_text, value_text), n)
        brands, brand_text = _brands(attributes, key_text, value_text, n)
        attribute_rows = ItemRows.of(attributes, n)
        if transforms is None:
            transforms = FeatureTransforms(
                {name: vocabularies[name].result() for name in TFIDF},
                category_frequencies(categories, category_names),
                _top_keys(attributes, categories["2"], category_names["2"], key_text),
            )
        codes, code_strings, code_texts = code_items.result()
    return ProductTables(
        ids=products["variantid"].to_numpy(np.int64),
        categories=categories,
        category_names=category_names,
        category_frequency=_category_frequency(transforms.category_frequency, category_names),
        names=names,
        name_lengths=pc.utf8_length(names_arrow).to_numpy().astype(np.float32),
        texts=texts,
        descriptions_present=products["description"].notna().to_numpy(np.float32),
        attributes=attribute_rows,
        top_keys=_coded_top_keys(transforms.top_keys, category_names["2"], key_text),
        codes=codes,
        name_numbers=name_numbers.result(),
        code_strings=code_strings,
        code_texts=code_texts,
        numbers=numbers.result(),
        colours=colours,
        brands=brands,
        brand_text=brand_text,
        tfidf={name: Tfidf(transforms.tfidf[name], texts[source]) for name, (source, _, _) in TFIDF.items()},
        transforms=transforms,
        embeddings=embeddings,
        photo_sets=photo_sets,
    )
