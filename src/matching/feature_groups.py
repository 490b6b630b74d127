"""Pair feature groups, each a named function of the pairs and the product tables.

`ProductTables` is everything computed once per product over all products (train and test alike):
parsed attributes, codes, numbers with units, TF-IDF matrices, photo sets. A group turns two
arrays of product rows into columns whose names start with the group's prefix, so any group can
be switched off (`features.groups`) or ablated by its prefix. A row of -1 is an unknown product
and gives NaN.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from rapidfuzz import fuzz
from rapidfuzz.process import cpdist
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from matching.embeddings import positions

CATEGORY_LEVELS = ("1", "2", "3", "4")
PREFIX = {"embeddings": "emb_", "category": "cat_", "attributes": "attr_", "text": "text_", "codes": "code_",
          "photos": "photo_"}
TOP_KEYS = 8  # per-key equality for this many of the category's most frequent attribute keys

CODE = re.compile(r"(?<![\w])(?=[\w\-./]*\d)[\w][\w\-./]*[\w](?![\w])")
SEPARATORS = re.compile(r"[\-./_\s]")
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


def normalise(text: str) -> str:
    return text.lower().replace("ё", "е")


def take(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """values[rows] as float32 with NaN where a row is -1."""
    out = values[np.maximum(rows, 0)].astype(np.float32, copy=True)
    out[rows < 0] = np.nan
    return out


def vector_distances(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Cosine similarity, euclidean and manhattan distance row by row; NaN rows stay NaN."""
    dot = np.einsum("ij,ij->i", a, b)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.where(norms > 0, dot / norms, np.nan)
    diff = a - b
    return {"cos": cosine, "euclidean": np.linalg.norm(diff, axis=1), "manhattan": np.abs(diff).sum(axis=1)}


def sparse_cosine(matrix: sparse.csr_matrix, rows: list[np.ndarray]) -> np.ndarray:
    """Row-wise cosine of L2-normalised sparse rows; NaN where a product is unknown or has no text."""
    a, b = matrix[np.maximum(rows[0], 0)], matrix[np.maximum(rows[1], 0)]
    dot = np.asarray(a.multiply(b).sum(axis=1)).ravel()
    empty = (a.getnnz(axis=1) == 0) | (b.getnnz(axis=1) == 0) | (rows[0] < 0) | (rows[1] < 0)
    return np.where(empty, np.nan, dot).astype(np.float32)


def shared_counts(rows: list[np.ndarray], long: pd.DataFrame, item: str, n_products: int,
                  value: str | None = None) -> dict[str, np.ndarray]:
    """For each pair: items (keys, codes) of each side, items shared, and shared items with equal `value`."""
    per_product = np.bincount(long["product"], minlength=n_products).astype(np.float32)
    sides = []
    for side, product_rows in enumerate(rows):
        pairs = pd.DataFrame({"pair": np.arange(len(product_rows)), "product": product_rows})
        columns = ["product", item] + ([value] if value else [])
        sides.append(pairs.merge(long[columns], on="product").drop(columns="product")
                     .rename(columns={value: f"{value}{side}"} if value else {}))
    shared = sides[0].merge(sides[1], on=["pair", item])
    n_pairs = len(rows[0])
    out = {"a": take(per_product, rows[0]), "b": take(per_product, rows[1]),
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


@dataclass
class ProductTables:
    """Per-product inputs of the pair features, rows in `products` order (sorted by variantid)."""

    products: pd.DataFrame
    embeddings: dict[str, dict[str, np.ndarray]]
    attributes: pd.DataFrame          # product, key, value (codes), key_text, value_text
    codes: pd.DataFrame               # product, code (codes)
    code_strings: np.ndarray          # per product: its codes joined by spaces
    flat_text: np.ndarray             # per product: all its text, lowercased, separators removed
    numbers: dict[str, np.ndarray]    # quantity -> per product first value in base units (NaN if none)
    colours: pd.DataFrame             # product, colour (codes)
    brands: np.ndarray                # per product brand code (-1 if none)
    brand_text: np.ndarray            # per product normalised brand
    tfidf: dict[str, sparse.csr_matrix] = field(default_factory=dict)
    photo_sets: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.products)


def _attribute_rows(mappings: pd.Series) -> pd.DataFrame:
    product, keys, values = [], [], []
    for row, text in enumerate(mappings):
        if text is None or pd.isna(text):
            continue
        for key, value in json.loads(text).items():
            product.append(row)
            keys.append(key)
            values.append(" | ".join(sorted(normalise(str(v)) for v in value)))
    frame = pd.DataFrame({"product": np.asarray(product, dtype=np.int64), "key_text": keys, "value_text": values})
    frame["key"] = pd.factorize(frame["key_text"])[0]
    frame["value"] = pd.factorize(frame["value_text"])[0]
    frame["number"] = pd.to_numeric(frame["value_text"].str.replace(",", ".", regex=False), errors="coerce")
    return frame


def _numbers(products: pd.DataFrame, attributes: pd.DataFrame) -> dict[str, np.ndarray]:
    """First value of each quantity per product: from attribute keys with a unit (`Вес товара, г`),
    then from values and names with a unit (`500 г`, `2 l`)."""
    found: dict[str, np.ndarray] = {q: np.full(len(products), np.nan, dtype=np.float32) for q in QUANTITIES}
    for product, key, value in zip(attributes["product"], attributes["key_text"], attributes["value_text"]):
        unit = KEY_UNIT.search(key)
        if unit:
            number = re.match(r"\s*(\d+(?:[.,]\d+)?)\s*$", value)
            if number:
                quantity, factor = UNITS[unit.group(1).lower()]
                if np.isnan(found[quantity][product]):
                    found[quantity][product] = float(number.group(1).replace(",", ".")) * factor
    texts = products["name"].fillna("").astype(str) + " " + attributes.groupby("product")["value_text"].agg(" ".join) \
        .reindex(range(len(products))).fillna("")
    for product, text in enumerate(texts):
        for number, unit in NUMBER_UNIT.findall(text):
            quantity, factor = UNITS[unit.lower()]
            if np.isnan(found[quantity][product]):
                found[quantity][product] = float(number.replace(",", ".")) * factor
    return found


def _tfidf(texts: pd.Series, analyzer: str, ngrams: tuple[int, int], max_features: int) -> sparse.csr_matrix:
    """TF-IDF rows (L2-normalised) fitted once over the distinct texts of all products."""
    codes, uniques = pd.factorize(texts.fillna(""))
    words = {"token_pattern": r"(?u)\b\w+\b"} if analyzer == "word" else {}
    vectorizer = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, max_features=max_features, sublinear_tf=True,
                                 dtype=np.float32, **words)
    try:
        matrix = vectorizer.fit_transform(list(uniques))
    except ValueError:  # no text at all (e.g. no product has a description)
        return sparse.csr_matrix((len(texts), 1), dtype=np.float32)
    return matrix[codes].tocsr()


def product_tables(products: pd.DataFrame, embeddings: dict, photo_sets: dict | None, max_features: int) -> ProductTables:
    products = products.reset_index(drop=True)
    attributes = _attribute_rows(products["attributes"])
    names = products["name"].fillna("").astype(str).map(normalise)
    descriptions = products["description"].fillna("").astype(str).map(normalise)
    attribute_text = attributes.groupby("product")["value_text"].agg(" ".join).reindex(range(len(products))).fillna("")

    code_lists = [sorted({SEPARATORS.sub("", c) for c in CODE.findall(f"{n} {a}")
                          if len(SEPARATORS.sub("", c)) >= 3 and not SEPARATORS.sub("", c).isdigit()
                          or len(SEPARATORS.sub("", c)) >= 4})
                  for n, a in zip(names, attribute_text)]
    code_frame = pd.DataFrame({"product": np.repeat(np.arange(len(products)), [len(c) for c in code_lists]),
                               "code_text": [c for codes in code_lists for c in codes]})
    code_frame["code"] = pd.factorize(code_frame["code_text"])[0]
    flat = (names + " " + attribute_text + " " + descriptions).str.replace(SEPARATORS, "", regex=True).to_numpy(object)

    colour_rows = attributes[attributes["key_text"].str.contains(COLOUR_KEY)]
    colours = colour_rows.assign(colour=colour_rows["value_text"].str.split(r" \| ")).explode("colour")
    colours = colours.assign(colour=pd.factorize(colours["colour"])[0])[["product", "colour"]]
    brand_rows = attributes[attributes["key_text"].str.contains(BRAND_KEY)].drop_duplicates("product")
    brand_text = np.full(len(products), "", dtype=object)
    brand_text[brand_rows["product"].to_numpy()] = brand_rows["value_text"].to_numpy()
    brands = np.full(len(products), -1, dtype=np.int64)
    brands[brand_rows["product"].to_numpy()] = pd.factorize(brand_rows["value_text"])[0]

    tfidf = {
        "name_char": _tfidf(names, "char_wb", (2, 4), max_features),
        "name_word": _tfidf(names, "word", (1, 1), max_features),
        "description_word": _tfidf(descriptions.where(descriptions != ""), "word", (1, 1), max_features),
        "attributes_char": _tfidf(attribute_text, "char_wb", (2, 4), max_features),
    }
    return ProductTables(products, embeddings, attributes, code_frame,
                         np.array([" ".join(c) for c in code_lists], dtype=object), flat,
                         _numbers(products, attributes), colours, brands, brand_text, tfidf, photo_sets or {})


# --- groups -----------------------------------------------------------------------------------

def embedding_group(rows: list[np.ndarray], pairs: pd.DataFrame, tables: ProductTables) -> dict[str, np.ndarray]:
    """Distances of every embedding of every modality; per-product scalars as min, max, |difference|."""
    columns: dict[str, np.ndarray] = {}
    for modality, arrays in tables.embeddings.items():
        ids = arrays["variantid"]
        order = np.argsort(ids, kind="stable")
        product_ids = tables.products["variantid"].to_numpy(np.int64)
        # Embedding rows of each pair side, via the product's id.
        found = [positions(ids[order], product_ids[np.maximum(r, 0)]) for r in rows]
        sides = [np.where((f >= 0) & (r >= 0), order[np.maximum(f, 0)], -1) for f, r in zip(found, rows)]
        for name, values in arrays.items():
            if name == "variantid":
                continue
            a, b = take(values, sides[0]), take(values, sides[1])
            prefix = f"emb_{modality}_{name}"
            if values.ndim == 2:
                for kind, distance in vector_distances(a, b).items():
                    columns[f"{prefix}_{kind}"] = distance
            else:
                columns[f"{prefix}_min"] = np.minimum(a, b)
                columns[f"{prefix}_max"] = np.maximum(a, b)
                columns[f"{prefix}_absdiff"] = np.abs(a - b)
    return columns


def category_group(rows: list[np.ndarray], pairs: pd.DataFrame, tables: ProductTables) -> dict[str, np.ndarray]:
    """Equality of each category level, and how common the first product's category is."""
    columns = {}
    for level in CATEGORY_LEVELS:
        codes = pd.factorize(tables.products[f"category_{level}"], use_na_sentinel=True)[0].astype(np.float32)
        frequency = np.bincount(np.maximum(codes, 0).astype(np.int64)).astype(np.float32) / max(tables.n, 1)
        codes[codes < 0] = np.nan
        a, b = take(codes, rows[0]), take(codes, rows[1])
        columns[f"cat_{level}_equal"] = np.where(np.isnan(a) | np.isnan(b), np.nan, (a == b).astype(np.float32))
        columns[f"cat_{level}_frequency"] = np.where(np.isnan(a), np.nan, frequency[np.nan_to_num(a).astype(np.int64)])
    return columns


def attribute_group(rows: list[np.ndarray], pairs: pd.DataFrame, tables: ProductTables) -> dict[str, np.ndarray]:
    """Shared keys, equal values, the category's top keys one by one, numbers with units, colour, brand."""
    counts = shared_counts(rows, tables.attributes, "key", tables.n, value="value")
    union = counts["a"] + counts["b"] - counts["shared"]
    columns = {
        "attr_shared_keys": counts["shared"], "attr_key_jaccard": ratio(counts["shared"], union),
        "attr_equal_value_share": ratio(counts["equal"], counts["shared"]), "attr_equal_values": counts["equal"],
        "attr_keys_min": np.minimum(counts["a"], counts["b"]), "attr_keys_max": np.maximum(counts["a"], counts["b"]),
        "attr_value_tfidf_cos": sparse_cosine(tables.tfidf["attributes_char"], rows),
    }
    columns.update(_top_key_equality(rows, tables))
    for quantity, values in tables.numbers.items():
        a, b = take(values, rows[0]), take(values, rows[1])
        columns[f"attr_{quantity}_relative_difference"] = ratio(np.abs(a - b), np.maximum(np.abs(a), np.abs(b)))
    colour = shared_counts(rows, tables.colours.rename(columns={"colour": "item"}), "item", tables.n)
    columns["attr_colour_match"] = np.where((colour["a"] > 0) & (colour["b"] > 0),
                                            (colour["shared"] > 0).astype(np.float32), np.nan)
    brand_a, brand_b = take(tables.brands.astype(np.float32), rows[0]), take(tables.brands.astype(np.float32), rows[1])
    known = (brand_a >= 0) & (brand_b >= 0)
    columns["attr_brand_equal"] = np.where(known, (brand_a == brand_b).astype(np.float32), np.nan)
    columns["attr_brand_in_other_name"] = _brand_in_other_name(rows, tables)
    return columns


def _top_key_equality(rows: list[np.ndarray], tables: ProductTables) -> dict[str, np.ndarray]:
    """Equality of the k-th most frequent attribute key of the pair's level-2 category (NaN if a side lacks it)."""
    attributes = tables.attributes
    category = tables.products["category_2"].fillna("").to_numpy(object)
    keyed = attributes.assign(category=category[attributes["product"].to_numpy()])
    ranked = keyed.groupby(["category", "key"]).size().rename("count").reset_index()
    ranked = ranked.sort_values(["category", "count", "key"], ascending=[True, False, True])
    ranked["slot"] = ranked.groupby("category").cumcount()
    ranked = ranked[ranked["slot"] < TOP_KEYS]
    pairs = pd.DataFrame({"pair": np.arange(len(rows[0])), "category": category[np.maximum(rows[0], 0)]})
    slots = pairs.merge(ranked[["category", "key", "slot"]], on="category")
    for side, product_rows in enumerate(rows):
        values = attributes[["product", "key", "value", "number"]].rename(
            columns={"value": f"value{side}", "number": f"number{side}", "product": f"p{side}"})
        slots[f"p{side}"] = product_rows[slots["pair"].to_numpy()]
        slots = slots.merge(values, on=[f"p{side}", "key"], how="left")
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
    names = tables.products["name"].fillna("").astype(str).map(normalise).to_numpy(object)
    out = np.full(len(rows[0]), np.nan, dtype=np.float32)
    for i, (a, b) in enumerate(zip(rows[0], rows[1])):
        if a < 0 or b < 0:
            continue
        hits = [bool(tables.brand_text[x]) and tables.brand_text[x] in names[y] for x, y in ((a, b), (b, a))]
        if tables.brand_text[a] or tables.brand_text[b]:
            out[i] = float(any(hits))
    return out


def text_group(rows: list[np.ndarray], pairs: pd.DataFrame, tables: ProductTables) -> dict[str, np.ndarray]:
    """TF-IDF cosines, rapidfuzz ratios and token Jaccard of names, lengths and presence of texts."""
    names = tables.products["name"].fillna("").astype(str).map(normalise).to_numpy(object)
    a, b = names[np.maximum(rows[0], 0)], names[np.maximum(rows[1], 0)]
    missing = (rows[0] < 0) | (rows[1] < 0) | (a == "") | (b == "")
    columns = {f"text_{name}_tfidf_cos": sparse_cosine(matrix, rows)
               for name, matrix in tables.tfidf.items() if not name.startswith("attributes")}
    for label, scorer in (("ratio", fuzz.ratio), ("partial_ratio", fuzz.partial_ratio),
                          ("token_sort_ratio", fuzz.token_sort_ratio), ("token_set_ratio", fuzz.token_set_ratio)):
        scores = cpdist(list(a), list(b), scorer=scorer, workers=-1, dtype=np.float32) / 100.0
        columns[f"text_name_{label}"] = np.where(missing, np.nan, scores)
    words = (tables.tfidf["name_word"] > 0).astype(np.float32).tocsr()
    counts = {"a": np.asarray(words[np.maximum(rows[0], 0)].sum(axis=1)).ravel(),
              "b": np.asarray(words[np.maximum(rows[1], 0)].sum(axis=1)).ravel(),
              "shared": np.asarray(words[np.maximum(rows[0], 0)].multiply(words[np.maximum(rows[1], 0)]).sum(axis=1)).ravel()}
    columns["text_name_token_jaccard"] = np.where(missing, np.nan,
                                                  ratio(counts["shared"], counts["a"] + counts["b"] - counts["shared"]))
    columns.update(_unique_token_weight(words, rows))
    name_length = np.array([len(n) for n in names], dtype=np.float32)
    la, lb = take(name_length, rows[0]), take(name_length, rows[1])
    columns["text_name_length_ratio"] = ratio(np.minimum(la, lb), np.maximum(la, lb))
    columns["text_name_length_absdiff"] = np.abs(la - lb)
    has_description = tables.products["description"].notna().to_numpy(np.float32)
    columns["text_descriptions_present"] = take(has_description, rows[0]) + take(has_description, rows[1])
    return columns


def _unique_token_weight(words: sparse.csr_matrix, rows: list[np.ndarray]) -> dict[str, np.ndarray]:
    """How much the words one name has and the other lacks weigh (inverse document frequency): a
    rare word on one side only ("upgrade", "pro", a model suffix) speaks against a match."""
    document_frequency = np.asarray(words.sum(axis=0)).ravel()
    idf = np.log((1 + words.shape[0]) / (1 + document_frequency)).astype(np.float32) + 1
    a, b = words[np.maximum(rows[0], 0)], words[np.maximum(rows[1], 0)]
    shared = a.multiply(b)
    weights = sparse.diags(idf)
    only = [((a - shared) @ weights).tocsr(), ((b - shared) @ weights).tocsr()]
    total = [np.asarray(m.sum(axis=1)).ravel() for m in only]
    largest = [np.asarray(m.max(axis=1).todense()).ravel() for m in only]
    unknown = (rows[0] < 0) | (rows[1] < 0)
    out = {"text_name_unique_idf_sum_max": np.maximum(*total), "text_name_unique_idf_sum_min": np.minimum(*total),
           "text_name_unique_idf_max": np.maximum(*largest)}
    return {k: np.where(unknown, np.nan, v).astype(np.float32) for k, v in out.items()}


def code_group(rows: list[np.ndarray], pairs: pd.DataFrame, tables: ProductTables) -> dict[str, np.ndarray]:
    """Model numbers and other letter-and-digit tokens: shared, conflicting, fuzzy, found in the other's text."""
    counts = shared_counts(rows, tables.codes, "code", tables.n)
    both = (counts["a"] > 0) & (counts["b"] > 0)
    a, b = tables.code_strings[np.maximum(rows[0], 0)], tables.code_strings[np.maximum(rows[1], 0)]
    fuzzy = cpdist(list(a), list(b), scorer=fuzz.token_set_ratio, workers=-1, dtype=np.float32) / 100.0
    return {
        "code_shared": counts["shared"], "code_min": np.minimum(counts["a"], counts["b"]),
        "code_max": np.maximum(counts["a"], counts["b"]),
        "code_jaccard": ratio(counts["shared"], counts["a"] + counts["b"] - counts["shared"]),
        "code_conflict": np.where(both, (counts["shared"] == 0).astype(np.float32), np.nan),
        "code_fuzzy": np.where(both, fuzzy, np.nan),
        "code_in_other_text": _code_in_other_text(rows, tables),
    }


def _code_in_other_text(rows: list[np.ndarray], tables: ProductTables) -> np.ndarray:
    """Share of one product's codes found anywhere in the other's text, the larger of both ways."""
    codes = tables.codes.groupby("product")["code_text"].agg(list).reindex(range(tables.n)).to_numpy(object)
    out = np.full(len(rows[0]), np.nan, dtype=np.float32)
    for i, (a, b) in enumerate(zip(rows[0], rows[1])):
        if a < 0 or b < 0:
            continue
        shares = [np.mean([c in tables.flat_text[y] for c in codes[x]]) for x, y in ((a, b), (b, a))
                  if isinstance(codes[x], list)]
        if shares:
            out[i] = max(shares)
    return out


def photo_group(rows: list[np.ndarray], pairs: pd.DataFrame, tables: ProductTables,
                chunk_combinations: int = 2_000_000) -> dict[str, np.ndarray]:
    """Statistics of the cosine matrix between the two products' photo sets (main photo first), the
    main photo against the other's extra photos, and the difference in photo counts."""
    sets = tables.photo_sets
    names = ("photo_cos_min", "photo_cos_max", "photo_cos_mean", "photo_cos_std", "photo_main_vs_other_max")
    columns = {name: np.full(len(rows[0]), np.nan, dtype=np.float32) for name in names}
    if not sets or len(sets["photos"]) == 0:
        return {**columns, "photo_count_absdiff": np.full(len(rows[0]), np.nan, dtype=np.float32)}
    ids, offsets, has_main = sets["variantid"], sets["offsets"], sets["has_main"]
    photos = sets["photos"] / np.maximum(np.linalg.norm(sets["photos"], axis=1, keepdims=True), 1e-12)
    product_ids = tables.products["variantid"].to_numpy(np.int64)
    side_rows = [np.where(r >= 0, positions(ids, product_ids[np.maximum(r, 0)]), -1) for r in rows]
    counts = np.diff(offsets)
    ka = np.where(side_rows[0] >= 0, counts[np.maximum(side_rows[0], 0)], 0)
    kb = np.where(side_rows[1] >= 0, counts[np.maximum(side_rows[1], 0)], 0)
    columns["photo_count_absdiff"] = np.where((side_rows[0] >= 0) & (side_rows[1] >= 0),
                                              np.abs(ka - kb), np.nan).astype(np.float32)
    combos = ka * kb
    start = 0
    while start < len(combos):
        stop = start + max(1, int(np.searchsorted(np.cumsum(combos[start:]), chunk_combinations)))
        _photo_chunk(np.arange(start, min(stop, len(combos))), side_rows, ka, kb, offsets, has_main, photos, columns)
        start = stop
    return columns


def _photo_chunk(chunk, side_rows, ka, kb, offsets, has_main, photos, columns) -> None:
    n = (ka * kb)[chunk]
    chunk, n = chunk[n > 0], n[n > 0]
    if len(chunk) == 0:
        return
    pair = np.repeat(np.arange(len(chunk)), n)
    within = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    i, j = within // kb[chunk][pair], within % kb[chunk][pair]
    ra, rb = side_rows[0][chunk][pair], side_rows[1][chunk][pair]
    cos = np.einsum("ij,ij->i", photos[offsets[ra] + i], photos[offsets[rb] + j])
    starts = np.concatenate([[0], np.cumsum(n)[:-1]])
    columns["photo_cos_min"][chunk] = np.minimum.reduceat(cos, starts)
    columns["photo_cos_max"][chunk] = np.maximum.reduceat(cos, starts)
    mean = np.add.reduceat(cos, starts) / n
    columns["photo_cos_mean"][chunk] = mean
    columns["photo_cos_std"][chunk] = np.sqrt(np.maximum(np.add.reduceat(cos ** 2, starts) / n - mean ** 2, 0))
    # Main photo of one side (photo 0 where it has one) against the other side's extra photos.
    cross = ((i == 0) & has_main[ra] & (j > 0)) | ((j == 0) & has_main[rb] & (i > 0))
    best = np.full(len(chunk), -np.inf)
    np.maximum.at(best, pair[cross], cos[cross])
    columns["photo_main_vs_other_max"][chunk] = np.where(np.isfinite(best), best, np.nan)


GROUPS: dict[str, Callable[[list[np.ndarray], pd.DataFrame, ProductTables], dict[str, np.ndarray]]] = {
    "embeddings": embedding_group,
    "category": category_group,
    "attributes": attribute_group,
    "text": text_group,
    "codes": code_group,
    "photos": photo_group,
}
