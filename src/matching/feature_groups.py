"""Pair feature groups, each a named function of the pairs and the product tables.

`ProductTables` is everything computed once per product over all products (train and test alike):
parsed attributes, codes, numbers with units, fitted TF-IDF vectorisers, and loaders of the
embedding files and photo sets. A group turns two arrays of product rows into columns whose names
start with the group's prefix, so any group can be switched off (`features.groups`) or ablated by
its prefix. A row of -1 is an unknown product and gives NaN.

Built for 2.25 M products and 1.2 M pairs on a 24 GiB machine: texts stay Arrow strings, a
product's attribute and code rows are found by offsets (CSR), TF-IDF rows are made for a chunk of
pairs at a time from vectorisers fitted on a sample, and an embedding file or the photo sets are
loaded only while their group runs. What Python loops remain do O(1) work a product or a pair.
"""
from __future__ import annotations

import json
import re
from array import array
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import fuzz
from rapidfuzz.distance import Prefix
from rapidfuzz.process import cpdist
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from matching.embeddings import positions
from matching.encoders import fit_sample_rows, transform_in_parallel

CATEGORY_LEVELS = ("1", "2", "3", "4")
PREFIX = {"embeddings": "emb_", "category": "cat_", "attributes": "attr_", "text": "text_", "codes": "code_",
          "photos": "photo_", "neighbours": "nbr_"}  # neighbours.py names its columns nbr_<ranked column>
TOP_KEYS = 8  # per-key equality for this many of the category's most frequent attribute keys
PAIR_CHUNK = 100_000  # pairs whose TF-IDF rows, attribute rows and photo cosines are held at once

CODE = re.compile(r"(?<![\w])(?=[\w\-./]*\d)[\w][\w\-./]*[\w](?![\w])")
SEPARATORS = re.compile(r"[\-./_\s]")
DECIMAL = re.compile(r"\d+[.,]\d+")  # a price or a measure, not a code
UNITS = {  # unit -> (quantity, factor to the base unit)
    "г": ("weight", 1), "гр": ("weight", 1), "g": ("weight", 1), "кг": ("weight", 1000), "kg": ("weight", 1000),
    "мг": ("weight", 0.001), "mg": ("weight", 0.001), "lb": ("weight", 453.6), "lbs": ("weight", 453.6),
    "мл": ("volume", 1), "ml": ("volume", 1), "л": ("volume", 1000), "l": ("volume", 1000), "oz": ("volume", 29.57),
    "мм": ("length", 1), "mm": ("length", 1), "см": ("length", 10), "cm": ("length", 10), "м": ("length", 1000),
    "m": ("length", 1000), "дюйм": ("length", 25.4), "inch": ("length", 25.4), "in": ("length", 25.4),
    "шт": ("count", 1), "pcs": ("count", 1), "pack": ("count", 1), "pk": ("count", 1),
    "гб": ("memory", 1), "gb": ("memory", 1), "тб": ("memory", 1024), "tb": ("memory", 1024), "мб": ("memory", 1 / 1024),
    "mb": ("memory", 1 / 1024), "вт": ("power", 1), "w": ("power", 1), "мач": ("charge", 1), "mah": ("charge", 1),
}
QUANTITIES = sorted({q for q, _ in UNITS.values()})
NUMBER_UNIT = re.compile(r"(\d+(?:[.,]\d+)?)\s*(" + "|".join(sorted(map(re.escape, UNITS), key=len, reverse=True))
                         + r")(?![\w])", re.IGNORECASE)
KEY_UNIT = re.compile(r",\s*(" + "|".join(sorted(map(re.escape, UNITS), key=len, reverse=True)) + r")\s*$",
                      re.IGNORECASE)
COLOUR_KEY = re.compile(r"цвет|colou?r", re.IGNORECASE)
BRAND_KEY = re.compile(r"бренд|brand|manufacturer|производитель", re.IGNORECASE)


Arrays = dict[str, np.ndarray]
Source = Arrays | Callable[[], Arrays]  # arrays, or a loader called only while a group needs them


def loaded(source: Source | None) -> Arrays:
    return (source() if callable(source) else source) or {}


def normalise(text: str) -> str:
    return text.lower().replace("ё", "е")


def normalised(texts: pa.Array) -> pa.Array:
    """`normalise` over an Arrow string array in C++; a null becomes ""."""
    return pc.replace_substring(pc.utf8_lower(texts.fill_null("")), "ё", "е")


def arrow_strings(column: pd.Series) -> pa.Array:
    array = pa.array(column, type=pa.string(), from_pandas=True)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def strings_at(texts: pa.Array, rows: np.ndarray) -> list[str]:
    """Python strings of `rows` (a row of -1 gives "") for a chunk of pairs."""
    return texts.take(pa.array(np.maximum(rows, 0))).fill_null("").to_pylist()


def take(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """values[rows] as float32 with NaN where a row is -1."""
    out = values[np.maximum(rows, 0)].astype(np.float32, copy=True)
    out[rows < 0] = np.nan
    return out


def gather(starts: np.ndarray, counts: np.ndarray, product_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For products given by row (-1: none), every (position in `product_rows`, item index) of
    their items, where product p owns items starts[p] .. starts[p] + counts[p] - 1."""
    rows = np.maximum(product_rows, 0)
    k = np.where(product_rows >= 0, counts[rows], 0).astype(np.int64)
    owner = np.repeat(np.arange(len(rows)), k)
    within = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
    return owner, np.repeat(starts[rows], k) + within


def in_chunks(rows: list[np.ndarray], compute: Callable[[list[np.ndarray]], Arrays]) -> Arrays:
    """`compute` over chunks of PAIR_CHUNK pairs, its columns put back together."""
    size = PAIR_CHUNK
    parts = [compute([r[start:start + size] for r in rows]) for start in range(0, max(len(rows[0]), 1), size)]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def vector_distances(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Cosine similarity, euclidean and manhattan distance row by row; NaN rows stay NaN."""
    dot = np.einsum("ij,ij->i", a, b)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(norms > 0, dot / norms, np.nan)
    diff = a - b
    return {"cos": cosine, "euclidean": np.linalg.norm(diff, axis=1), "manhattan": np.abs(diff).sum(axis=1)}


def sparse_cosine(a: sparse.csr_matrix, b: sparse.csr_matrix, rows: list[np.ndarray]) -> np.ndarray:
    """Row-wise cosine of L2-normalised sparse rows; NaN where a product is unknown or has no text."""
    dot = np.asarray(a.multiply(b).sum(axis=1)).ravel()
    empty = (a.getnnz(axis=1) == 0) | (b.getnnz(axis=1) == 0) | (rows[0] < 0) | (rows[1] < 0)
    return np.where(empty, np.nan, dot).astype(np.float32)


@dataclass
class ItemRows:
    """Items (attribute rows, codes, colours) of every product, sorted by product: product p owns
    rows starts[p] .. starts[p+1] - 1 of `frame`."""
    frame: pd.DataFrame
    starts: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame, n_products: int) -> ItemRows:
        frame = frame.sort_values("product", kind="stable").reset_index(drop=True)
        return cls(frame, np.searchsorted(frame["product"].to_numpy(), np.arange(n_products + 1)))

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.starts)

    def of_pairs(self, product_rows: np.ndarray, columns: list[str]) -> pd.DataFrame:
        pair, index = gather(self.starts, self.counts, product_rows)
        return self.frame[columns].iloc[index].assign(pair=pair).reset_index(drop=True)


def shared_counts(rows: list[np.ndarray], items: ItemRows, item: str, value: str | None = None) -> Arrays:
    """For each pair: items (keys, codes) of each side, items shared, and shared items with equal `value`."""
    columns = [item] + ([value] if value else [])
    sides = [items.of_pairs(r, columns).rename(columns={value: f"{value}{s}"} if value else {})
             for s, r in enumerate(rows)]
    shared = sides[0].merge(sides[1], on=["pair", item])
    n_pairs = len(rows[0])
    out = {"a": take(items.counts.astype(np.float32), rows[0]), "b": take(items.counts.astype(np.float32), rows[1]),
           "shared": np.bincount(shared["pair"], minlength=n_pairs).astype(np.float32)}
    if value:
        equal = (shared[f"{value}0"] == shared[f"{value}1"]).to_numpy(np.float64)
        out["equal"] = np.bincount(shared["pair"], weights=equal, minlength=n_pairs).astype(np.float32)
    unknown = (rows[0] < 0) | (rows[1] < 0)
    for counts in out.values():
        counts[unknown] = np.nan
    return out


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan).astype(np.float32)


def jaccard(counts: Arrays) -> np.ndarray:
    """Shared items over the union, from `shared_counts`' counts (NaN if neither side has any)."""
    return ratio(counts["shared"], counts["a"] + counts["b"] - counts["shared"])


@dataclass
class Tfidf:
    """A TF-IDF vectoriser fitted on a sample of the distinct texts, and every product's text."""
    vectorizer: TfidfVectorizer | None
    texts: pa.Array

    def rows(self, product_rows: np.ndarray) -> sparse.csr_matrix:
        if self.vectorizer is None:
            return sparse.csr_matrix((len(product_rows), 1), dtype=np.float32)
        return transform_in_parallel(self.vectorizer, strings_at(self.texts, product_rows)).tocsr()

    def cosine(self, rows: list[np.ndarray]) -> np.ndarray:
        return sparse_cosine(self.rows(rows[0]), self.rows(rows[1]), rows)


def fit_tfidf(texts: pa.Array, analyzer: str, ngrams: tuple[int, int], max_features: int, fit_sample: int,
              seed: int) -> Tfidf:
    """TF-IDF (rows L2-normalised) fitted once on at most `fit_sample` distinct texts, drawn by seed."""
    distinct = pc.unique(texts).drop_null()
    if len(distinct) > fit_sample:
        distinct = distinct.take(pa.array(fit_sample_rows(len(distinct), fit_sample, seed)))
    words = {"token_pattern": r"(?u)\b\w+\b"} if analyzer == "word" else {}
    vectorizer = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, max_features=max_features, sublinear_tf=True,
                                 dtype=np.float32, **words)
    try:
        vectorizer.fit(distinct.to_pylist())
    except ValueError:  # no text at all (e.g. no product has a description)
        return Tfidf(None, texts)
    return Tfidf(vectorizer, texts)


@dataclass
class ProductTables:
    """Per-product inputs of the pair features, rows in `ids` order (sorted by variantid)."""

    ids: np.ndarray                   # variantid of each row
    categories: dict[str, np.ndarray]  # level -> category code per product (-1: none)
    category_names: dict[str, np.ndarray]  # level -> name of each code
    names: np.ndarray                 # normalised names (Python strings: rapidfuzz and substring tests)
    name_lengths: np.ndarray
    texts: dict[str, pa.Array]        # normalised name, attribute values, description ("" if none)
    descriptions_present: np.ndarray
    attributes: ItemRows              # product, key, value (codes), number (plain numeric value or NaN)
    top_keys: pd.DataFrame            # category (level-2 code), key, slot: the category's most frequent keys
    codes: ItemRows                   # product, code (codes)
    name_numbers: ItemRows            # product, item (codes of the numbers written in the name)
    code_strings: np.ndarray          # per product: its codes joined by spaces
    code_texts: np.ndarray            # text of each code
    numbers: dict[str, np.ndarray]    # quantity -> per product first value in base units (NaN if none)
    colours: ItemRows                 # product, item (colour codes)
    brands: np.ndarray                # per product brand code (-1 if none)
    brand_text: np.ndarray            # per product normalised brand
    tfidf: dict[str, Tfidf] = field(default_factory=dict)
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
            for name, items in (json.loads(text).items() if text else ()):
                rendered = " | ".join(sorted(normalise(str(v)) for v in items))
                product.append(row)
                key.append(keys.setdefault(name, len(keys)))
                value.append(values.setdefault(rendered, len(values)))
                parts.append(rendered)
            texts.append(" ".join(parts))
        joined.append(pa.array(texts, pa.string()))
    frame = pd.DataFrame({"product": np.frombuffer(product, np.int64), "key": np.frombuffer(key, np.int64),
                          "value": np.frombuffer(value, np.int64)})
    key_text, value_text = np.array(list(keys), dtype=object), np.array(list(values), dtype=object)
    value_number = pd.to_numeric(pd.Series(value_text, dtype=object).str.replace(",", ".", regex=False),
                                 errors="coerce").to_numpy(np.float64)
    frame["number"] = value_number[frame["value"].to_numpy()] if len(frame) else np.empty(0)
    all_joined = pa.concat_arrays(joined) if joined else pa.array([], pa.string())
    return frame, key_text, value_text, all_joined


def _numbers(names: np.ndarray, attribute_text: pa.Array, attributes: pd.DataFrame, key_text: np.ndarray,
             value_text: np.ndarray) -> dict[str, np.ndarray]:
    """First value of each quantity per product: from attribute keys with a unit (`Вес товара, г`),
    then from values and names with a unit (`500 г`, `2 l`)."""
    n = len(names)
    found: dict[str, np.ndarray] = {q: np.full(n, np.nan, dtype=np.float32) for q in QUANTITIES}
    key_units = [KEY_UNIT.search(k) for k in key_text]
    key_quantity = np.array([UNITS[u.group(1).lower()][0] if u else "" for u in key_units], dtype=object)
    key_factor = np.array([UNITS[u.group(1).lower()][1] if u else np.nan for u in key_units], dtype=np.float64)
    plain = re.compile(r"\s*(\d+(?:[.,]\d+)?)\s*$")
    value_plain = np.array([float(m.group(1).replace(",", ".")) if (m := plain.match(v)) else np.nan
                            for v in value_text], dtype=np.float64)
    if len(attributes):
        keyed = pd.DataFrame({"product": attributes["product"].to_numpy(),
                              "quantity": key_quantity[attributes["key"].to_numpy()],
                              "value": value_plain[attributes["value"].to_numpy()]
                              * key_factor[attributes["key"].to_numpy()]})
        keyed = keyed[(keyed["quantity"] != "") & keyed["value"].notna()].drop_duplicates(["product", "quantity"])
        for quantity, group in keyed.groupby("quantity"):
            found[quantity][group["product"].to_numpy()] = group["value"].to_numpy(np.float32)
    texts = pc.binary_join_element_wise(pa.array(names, pa.string()), attribute_text, " ")
    for start in range(0, n, 65_536):
        for product, text in enumerate(texts.slice(start, 65_536).to_pylist(), start):
            for number, unit in NUMBER_UNIT.findall(text):
                quantity, factor = UNITS[unit.lower()]
                if np.isnan(found[quantity][product]):
                    found[quantity][product] = float(number.replace(",", ".")) * factor
    return found


def _codes(names: np.ndarray, attribute_text: pa.Array, n: int) -> tuple[ItemRows, np.ndarray, np.ndarray]:
    """Letter-and-digit tokens (model numbers, articles) of each product's name and attribute values,
    separators removed; all-digit tokens count from 4 digits on, decimals (prices) not at all.
    Returns the rows (product, code), each product's codes joined by spaces, and each code's text."""
    product, found = array("q"), []
    strings = []
    texts = pc.binary_join_element_wise(pa.array(names, pa.string()), attribute_text, " ")
    for start in range(0, n, 65_536):
        for row, text in enumerate(texts.slice(start, 65_536).to_pylist(), start):
            tokens = (SEPARATORS.sub("", c) for c in CODE.findall(text) if not DECIMAL.fullmatch(c))
            codes = sorted({code for code in tokens if len(code) >= 3 and not code.isdigit() or len(code) >= 4})
            product.extend([row] * len(codes))
            found.extend(codes)
            strings.append(" ".join(codes))
    frame = pd.DataFrame({"product": np.frombuffer(product, np.int64), "code_text": np.array(found, dtype=object)})
    code, code_texts = pd.factorize(frame["code_text"])
    frame = pd.DataFrame({"product": frame["product"], "code": code})
    return ItemRows.of(frame, n), np.array(strings, dtype=object), np.asarray(code_texts, dtype=object)


def _name_numbers(names: pa.Array) -> ItemRows:
    """The numbers written in each name (versions, sizes, counts: "cs3" gives 3, "3.0" gives 3)."""
    lists = pc.split_pattern_regex(names, r"[^\d.,]+")
    flat = pc.list_flatten(lists)
    owner = pc.list_parent_indices(lists).to_numpy()
    keep = pc.match_substring_regex(flat, r"^\d").to_numpy(zero_copy_only=False)
    numbers = pd.to_numeric(pd.Series(flat.filter(pa.array(keep)).to_pylist(), dtype=object)
                            .str.strip(".,").str.replace(",", ".", regex=False), errors="coerce")
    frame = pd.DataFrame({"product": owner[keep], "item": numbers.to_numpy()}).dropna().drop_duplicates()
    return ItemRows.of(frame.assign(item=pd.factorize(frame["item"])[0]), len(names))


def _category_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    encoded = pc.dictionary_encode(arrow_strings(column))
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, np.array(encoded.dictionary.to_pylist(), dtype=object)


def _top_keys(attributes: pd.DataFrame, category: np.ndarray) -> pd.DataFrame:
    """The TOP_KEYS most frequent attribute keys of each level-2 category, ranked (ties by key code)."""
    keyed = pd.DataFrame({"category": category[attributes["product"].to_numpy()], "key": attributes["key"].to_numpy()})
    ranked = keyed.groupby(["category", "key"]).size().rename("count").reset_index()
    ranked = ranked.sort_values(["category", "count", "key"], ascending=[True, False, True])
    ranked["slot"] = ranked.groupby("category").cumcount()
    return ranked.loc[ranked["slot"] < TOP_KEYS, ["category", "key", "slot"]].reset_index(drop=True)


def product_tables(products: pd.DataFrame, embeddings: Mapping[str, Source], photo_sets: Source | None,
                   max_features: int, fit_sample: int = 200_000, seed: int = 0) -> ProductTables:
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

    colour_rows = attributes[np.array([bool(COLOUR_KEY.search(k)) for k in key_text], dtype=bool)[attributes["key"]]] \
        if len(attributes) else attributes
    colour_values = pd.Series(value_text[colour_rows["value"].to_numpy()], dtype=object).str.split(r" \| ")
    colours = pd.DataFrame({"product": colour_rows["product"].to_numpy(), "item": colour_values.to_numpy()}).explode("item")
    colours = colours.assign(item=pd.factorize(colours["item"])[0]).astype({"product": np.int64})
    brand_rows = attributes[np.array([bool(BRAND_KEY.search(k)) for k in key_text], dtype=bool)[attributes["key"]]] \
        .drop_duplicates("product") if len(attributes) else attributes
    brand_text = np.full(n, "", dtype=object)
    brand_text[brand_rows["product"].to_numpy()] = value_text[brand_rows["value"].to_numpy()]
    brands = np.full(n, -1, dtype=np.int64)
    brands[brand_rows["product"].to_numpy()] = brand_rows["value"].to_numpy()  # one value code, one brand text

    codes, code_strings, code_texts = _codes(names, attribute_text, n)
    tfidf = {
        "name_char": fit_tfidf(names_arrow, "char_wb", (2, 4), max_features, fit_sample, seed),
        "name_word": fit_tfidf(names_arrow, "word", (1, 1), max_features, fit_sample, seed),
        "description_word": fit_tfidf(description_text, "word", (1, 1), max_features, fit_sample, seed),
        "attributes_char": fit_tfidf(attribute_text, "char_wb", (2, 4), max_features, fit_sample, seed),
    }
    return ProductTables(
        ids=products["variantid"].to_numpy(np.int64), categories=categories, category_names=category_names,
        names=names, name_lengths=pc.utf8_length(names_arrow).to_numpy().astype(np.float32),
        texts={"name": names_arrow, "attributes": attribute_text, "description": description_text},
        descriptions_present=products["description"].notna().to_numpy(np.float32),
        attributes=ItemRows.of(attributes, n), top_keys=_top_keys(attributes, categories["2"]), codes=codes,
        name_numbers=_name_numbers(names_arrow), code_strings=code_strings, code_texts=code_texts,
        numbers=_numbers(names, attribute_text, attributes, key_text, value_text),
        colours=ItemRows.of(colours, n), brands=brands, brand_text=brand_text, tfidf=tfidf,
        embeddings=embeddings, photo_sets=photo_sets)


# --- groups -----------------------------------------------------------------------------------

def embedding_group(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    """Distances of every embedding of every modality; per-product scalars as min, max, |difference|.
    One modality's file is in memory at a time."""
    columns: Arrays = {}
    for modality, source in tables.embeddings.items():
        arrays = loaded(source)  # a lazy np.load archive: one matrix in memory at a time
        ids = arrays["variantid"]
        order = np.argsort(ids, kind="stable")
        # Embedding rows of each pair side, via the product's id.
        found = [positions(ids[order], tables.ids[np.maximum(r, 0)]) for r in rows]
        sides = [np.where((f >= 0) & (r >= 0), order[np.maximum(f, 0)], -1) for f, r in zip(found, rows)]
        for name, values in arrays.items():
            if name == "variantid":
                continue
            prefix = f"emb_{modality}_{name}"
            if values.ndim == 2:
                distances = in_chunks(sides, lambda s: vector_distances(take(values, s[0]), take(values, s[1])))
                columns.update({f"{prefix}_{kind}": distance for kind, distance in distances.items()})
            else:
                a, b = take(values, sides[0]), take(values, sides[1])
                columns[f"{prefix}_min"] = np.minimum(a, b)
                columns[f"{prefix}_max"] = np.maximum(a, b)
                columns[f"{prefix}_absdiff"] = np.abs(a - b)
        if hasattr(arrays, "close"):
            arrays.close()
    return columns


def category_group(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    """Equality of each category level, and how common the first product's category is."""
    columns = {}
    for level in CATEGORY_LEVELS:
        codes = tables.categories[level].astype(np.float32)
        frequency = np.bincount(np.maximum(codes, 0).astype(np.int64)).astype(np.float32) / max(tables.n, 1)
        codes[codes < 0] = np.nan
        a, b = take(codes, rows[0]), take(codes, rows[1])
        columns[f"cat_{level}_equal"] = np.where(np.isnan(a) | np.isnan(b), np.nan, (a == b).astype(np.float32))
        columns[f"cat_{level}_frequency"] = np.where(np.isnan(a), np.nan, frequency[np.nan_to_num(a).astype(np.int64)])
    return columns


def attribute_group(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    """Shared keys, equal values, the category's top keys one by one, numbers with units, colour, brand."""
    return in_chunks(rows, lambda chunk: _attribute_chunk(chunk, tables))


def _attribute_chunk(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    counts = shared_counts(rows, tables.attributes, "key", value="value")
    columns = {
        "attr_shared_keys": counts["shared"], "attr_key_jaccard": jaccard(counts),
        "attr_equal_value_share": ratio(counts["equal"], counts["shared"]), "attr_equal_values": counts["equal"],
        "attr_keys_min": np.minimum(counts["a"], counts["b"]), "attr_keys_max": np.maximum(counts["a"], counts["b"]),
        "attr_value_tfidf_cos": tables.tfidf["attributes_char"].cosine(rows),
    }
    columns.update(_top_key_equality(rows, tables))
    for quantity, values in tables.numbers.items():
        a, b = take(values, rows[0]), take(values, rows[1])
        columns[f"attr_{quantity}_relative_difference"] = ratio(np.abs(a - b), np.maximum(np.abs(a), np.abs(b)))
    colour = shared_counts(rows, tables.colours, "item")
    columns["attr_colour_match"] = np.where((colour["a"] > 0) & (colour["b"] > 0),
                                            (colour["shared"] > 0).astype(np.float32), np.nan)
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
            columns={"value": f"value{side}", "number": f"number{side}"})
        slots = slots.merge(values, on=["pair", "key"], how="left")
    equal = np.where(slots["value0"].isna() | slots["value1"].isna(), np.nan,
                     (slots["value0"] == slots["value1"]).astype(np.float32))
    # Plain numbers (a price, a size without unit) compare by relative difference, not by equality.
    a, b = slots["number0"].to_numpy(np.float32), slots["number1"].to_numpy(np.float32)
    relative = ratio(np.abs(a - b), np.maximum(np.abs(a), np.abs(b)))
    columns = {}
    for slot in range(TOP_KEYS):
        mask = (slots["slot"] == slot).to_numpy()
        for name, values in ((f"attr_top{slot + 1}_key_equal", equal),
                             (f"attr_top{slot + 1}_key_relative_difference", relative)):
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


def text_group(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    """TF-IDF cosines, rapidfuzz ratios and token Jaccard of names, lengths and presence of texts."""
    return in_chunks(rows, lambda chunk: _text_chunk(chunk, tables))


def _text_chunk(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    a, b = tables.names[np.maximum(rows[0], 0)], tables.names[np.maximum(rows[1], 0)]
    missing = (rows[0] < 0) | (rows[1] < 0) | (a == "") | (b == "")
    columns = {f"text_{name}_tfidf_cos": tfidf.cosine(rows)
               for name, tfidf in tables.tfidf.items() if not name.startswith("attributes")}
    for label, scorer in (("ratio", fuzz.ratio), ("partial_ratio", fuzz.partial_ratio),
                          ("token_sort_ratio", fuzz.token_sort_ratio), ("token_set_ratio", fuzz.token_set_ratio)):
        scores = cpdist(list(a), list(b), scorer=scorer, workers=-1, dtype=np.float32) / 100.0
        columns[f"text_name_{label}"] = np.where(missing, np.nan, scores)
    name_words = tables.tfidf["name_word"]
    words = [(name_words.rows(r) > 0).astype(np.float32).tocsr() for r in rows]
    counts = {"a": np.asarray(words[0].sum(axis=1)).ravel(), "b": np.asarray(words[1].sum(axis=1)).ravel(),
              "shared": np.asarray(words[0].multiply(words[1]).sum(axis=1)).ravel()}
    columns["text_name_token_jaccard"] = np.where(missing, np.nan, jaccard(counts))
    columns.update(_unique_token_weight(words, name_words, rows))
    numbers = shared_counts(rows, tables.name_numbers, "item")
    unmatched = [numbers[side] - numbers["shared"] for side in ("a", "b")]
    columns["text_name_numbers_jaccard"] = jaccard(numbers)
    columns["text_name_numbers_unmatched_min"] = np.minimum(*unmatched)
    columns["text_name_numbers_unmatched_max"] = np.maximum(*unmatched)
    la, lb = take(tables.name_lengths, rows[0]), take(tables.name_lengths, rows[1])
    columns["text_name_length_ratio"] = ratio(np.minimum(la, lb), np.maximum(la, lb))
    columns["text_name_length_absdiff"] = np.abs(la - lb)
    columns["text_descriptions_present"] = take(tables.descriptions_present, rows[0]) + \
        take(tables.descriptions_present, rows[1])
    return columns


def _unique_token_weight(words: list[sparse.csr_matrix], name_words: Tfidf, rows: list[np.ndarray]) -> Arrays:
    """How much the words one name has and the other lacks weigh (inverse document frequency): a
    rare word on one side only ("upgrade", "pro", a model suffix) speaks against a match."""
    unknown = (rows[0] < 0) | (rows[1] < 0)
    if name_words.vectorizer is None:
        nothing = np.full(len(rows[0]), np.nan, dtype=np.float32)
        return {k: nothing.copy() for k in ("text_name_unique_idf_sum_max", "text_name_unique_idf_sum_min",
                                            "text_name_unique_idf_max")}
    a, b = words
    shared = a.multiply(b)
    weights = sparse.diags(name_words.vectorizer.idf_.astype(np.float32))
    only = [((a - shared) @ weights).tocsr(), ((b - shared) @ weights).tocsr()]
    total = [np.asarray(m.sum(axis=1)).ravel() for m in only]
    largest = [np.asarray(m.max(axis=1).todense()).ravel() for m in only]
    out = {"text_name_unique_idf_sum_max": np.maximum(*total), "text_name_unique_idf_sum_min": np.minimum(*total),
           "text_name_unique_idf_max": np.maximum(*largest)}
    return {k: np.where(unknown, np.nan, v).astype(np.float32) for k, v in out.items()}


def code_group(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    """Model numbers and other letter-and-digit tokens: shared, conflicting, fuzzy, found in the other's text."""
    return in_chunks(rows, lambda chunk: _code_chunk(chunk, tables))


def _code_chunk(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    counts = shared_counts(rows, tables.codes, "code")
    both = (counts["a"] > 0) & (counts["b"] > 0)
    a, b = tables.code_strings[np.maximum(rows[0], 0)], tables.code_strings[np.maximum(rows[1], 0)]
    fuzzy = cpdist(list(a), list(b), scorer=fuzz.token_set_ratio, workers=-1, dtype=np.float32) / 100.0
    return {
        "code_shared": counts["shared"], "code_min": np.minimum(counts["a"], counts["b"]),
        "code_max": np.maximum(counts["a"], counts["b"]),
        "code_jaccard": jaccard(counts),
        "code_conflict": np.where(both, (counts["shared"] == 0).astype(np.float32), np.nan),
        "code_fuzzy": np.where(both, fuzzy, np.nan),
        "code_in_other_text": _code_in_other_text(rows, tables),
        **_closest_codes(rows, tables, both),
    }


def _closest_codes(rows: list[np.ndarray], tables: ProductTables, both: np.ndarray) -> Arrays:
    """Over every two different codes, one from each side: the highest similarity (21118 against
    21218 is a sibling article, not the same item), and whether one code begins the other
    (gbu421 and gbu421w6). NaN unless both sides have codes (`both`)."""
    sides = [tables.codes.of_pairs(r, ["code"]) for r in rows]
    combos = sides[0].merge(sides[1], on="pair", suffixes=("0", "1"))
    combos = combos[combos["code0"] != combos["code1"]]
    a, b = (list(tables.code_texts[combos[f"code{s}"].to_numpy()]) for s in (0, 1))
    similarity = cpdist(a, b, scorer=fuzz.ratio, workers=-1, dtype=np.float32) / 100.0
    shortest = np.minimum(*(pc.utf8_length(pa.array(x, pa.string())).to_numpy() for x in (a, b)))
    begins = (cpdist(a, b, scorer=Prefix.similarity, workers=-1) == shortest) & (shortest >= 4)
    pair = combos["pair"].to_numpy()
    closest = np.where(both, 0.0, np.nan).astype(np.float32)
    np.maximum.at(closest, pair, similarity)
    prefix = np.where(both, 0.0, np.nan).astype(np.float32)
    np.maximum.at(prefix, pair, begins.astype(np.float32))
    return {"code_closest_different": closest, "code_one_begins_other": prefix}


def _code_in_other_text(rows: list[np.ndarray], tables: ProductTables) -> np.ndarray:
    """Share of one product's codes found anywhere in the other's text, the larger of both ways."""
    out = np.full(len(rows[0]), np.nan, dtype=np.float32)
    codes = [tables.code_strings[np.maximum(r, 0)] for r in rows]
    texts = [tables.flat_text(r) for r in rows]
    for i in range(len(out)):
        if rows[0][i] < 0 or rows[1][i] < 0:
            continue
        shares = [np.mean([c in texts[other][i] for c in codes[side][i].split()])
                  for side, other in ((0, 1), (1, 0)) if codes[side][i]]
        if shares:
            out[i] = max(shares)
    return out


def photo_group(rows: list[np.ndarray], tables: ProductTables, chunk_combinations: int = 500_000) -> Arrays:
    """Statistics of the cosine matrix between the two products' photo sets (main photo first), the
    main photo against the other's extra photos, and the difference in photo counts."""
    sets = loaded(tables.photo_sets)
    names = ("photo_cos_min", "photo_cos_max", "photo_cos_mean", "photo_cos_std", "photo_main_vs_other_max")
    columns = {name: np.full(len(rows[0]), np.nan, dtype=np.float32) for name in names}
    if not sets or len(sets["photos"]) == 0:
        return {**columns, "photo_count_absdiff": np.full(len(rows[0]), np.nan, dtype=np.float32)}
    ids, starts, counts, has_main = sets["variantid"], sets["starts"], sets["counts"], sets["has_main"]
    photos = sets["photos"]  # unit length, float16 (embed_photos.unit_half)
    side_rows = [np.where(r >= 0, positions(ids, tables.ids[np.maximum(r, 0)]), -1) for r in rows]
    ka = np.where(side_rows[0] >= 0, counts[np.maximum(side_rows[0], 0)], 0)
    kb = np.where(side_rows[1] >= 0, counts[np.maximum(side_rows[1], 0)], 0)
    columns["photo_count_absdiff"] = np.where((side_rows[0] >= 0) & (side_rows[1] >= 0),
                                              np.abs(ka - kb), np.nan).astype(np.float32)

    combos = ka * kb
    start = 0
    while start < len(combos):
        stop = start + max(1, int(np.searchsorted(np.cumsum(combos[start:]), chunk_combinations)))
        _photo_chunk(np.arange(start, min(stop, len(combos))), side_rows, ka, kb, starts, has_main, photos, columns)
        start = stop
    return columns


def _photo_chunk(chunk, side_rows, ka, kb, starts, has_main, photos, columns) -> None:
    n = (ka * kb)[chunk]
    chunk, n = chunk[n > 0], n[n > 0]
    if len(chunk) == 0:
        return
    pair = np.repeat(np.arange(len(chunk)), n)
    within = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    i, j = within // kb[chunk][pair], within % kb[chunk][pair]
    ra, rb = side_rows[0][chunk][pair], side_rows[1][chunk][pair]
    cos = np.einsum("ij,ij->i", photos[starts[ra] + i].astype(np.float32), photos[starts[rb] + j].astype(np.float32))
    first = np.concatenate([[0], np.cumsum(n)[:-1]])
    columns["photo_cos_min"][chunk] = np.minimum.reduceat(cos, first)
    columns["photo_cos_max"][chunk] = np.maximum.reduceat(cos, first)
    mean = np.add.reduceat(cos, first) / n
    columns["photo_cos_mean"][chunk] = mean
    columns["photo_cos_std"][chunk] = np.sqrt(np.maximum(np.add.reduceat(cos ** 2, first) / n - mean ** 2, 0))
    # Main photo of one side (photo 0 where it has one) against the other side's extra photos.
    cross = ((i == 0) & has_main[ra] & (j > 0)) | ((j == 0) & has_main[rb] & (i > 0))
    best = np.full(len(chunk), -np.inf)
    np.maximum.at(best, pair[cross], cos[cross])
    columns["photo_main_vs_other_max"][chunk] = np.where(np.isfinite(best), best, np.nan)


GROUPS: dict[str, Callable[[list[np.ndarray], ProductTables], Arrays]] = {
    "embeddings": embedding_group,
    "category": category_group,
    "attributes": attribute_group,
    "text": text_group,
    "codes": code_group,
    "photos": photo_group,
}
