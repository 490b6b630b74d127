"""Feature group `text` (`text_`): TF-IDF cosines, rapidfuzz ratios, token Jaccard and numbers of names,
lengths, presence of descriptions."""

from __future__ import annotations

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.process import cpdist
from scipy import sparse

from matching.features.arrays import Arrays, in_chunks, jaccard, ratio, shared_counts, take
from matching.features.products import ProductTables
from matching.features.tfidf import Tfidf, sparse_cosine


def text_group(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    """TF-IDF cosines, rapidfuzz ratios and token Jaccard of names, lengths and presence of texts."""
    return in_chunks(rows, lambda chunk: _text_chunk(chunk, tables))


def _text_chunk(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    a, b = tables.names[np.maximum(rows[0], 0)], tables.names[np.maximum(rows[1], 0)]
    missing = (rows[0] < 0) | (rows[1] < 0) | (a == "") | (b == "")
    # Each side's TF-IDF rows once: the name words' rows also give the token counts below.
    sides = {
        name: [tfidf.rows(r) for r in rows] for name, tfidf in tables.tfidf.items() if not name.startswith("attributes")
    }
    columns = {
        f"text_{name}_tfidf_cos": sparse_cosine(side_rows[0], side_rows[1], rows) for name, side_rows in sides.items()
    }
    for label, scorer in (
        ("ratio", fuzz.ratio),
        ("partial_ratio", fuzz.partial_ratio),
        ("token_sort_ratio", fuzz.token_sort_ratio),
        ("token_set_ratio", fuzz.token_set_ratio),
    ):
        scores = cpdist(list(a), list(b), scorer=scorer, workers=-1, dtype=np.float32) / 100.0
        columns[f"text_name_{label}"] = np.where(missing, np.nan, scores)
    name_words = tables.tfidf["name_word"]
    words = [(side > 0).astype(np.float32).tocsr() for side in sides["name_word"]]
    counts = {
        "a": np.asarray(words[0].sum(axis=1)).ravel(),
        "b": np.asarray(words[1].sum(axis=1)).ravel(),
        "shared": np.asarray(words[0].multiply(words[1]).sum(axis=1)).ravel(),
    }
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
    columns["text_descriptions_present"] = take(tables.descriptions_present, rows[0]) + take(
        tables.descriptions_present, rows[1]
    )
    return columns


def _unique_token_weight(words: list[sparse.csr_matrix], name_words: Tfidf, rows: list[np.ndarray]) -> Arrays:
    """How much the words one name has and the other lacks weigh (inverse document frequency): a
    rare word on one side only ("upgrade", "pro", a model suffix) speaks against a match."""
    unknown = (rows[0] < 0) | (rows[1] < 0)
    if name_words.vocabulary is None:
        nothing = np.full(len(rows[0]), np.nan, dtype=np.float32)
        return {
            k: nothing.copy()
            for k in ("text_name_unique_idf_sum_max", "text_name_unique_idf_sum_min", "text_name_unique_idf_max")
        }
    a, b = words
    shared = a.multiply(b)
    weights = sparse.diags(name_words.vocabulary.idf)
    only = [((a - shared) @ weights).tocsr(), ((b - shared) @ weights).tocsr()]
    total = [np.asarray(m.sum(axis=1)).ravel() for m in only]
    largest = [np.asarray(m.max(axis=1).todense()).ravel() for m in only]
    out = {
        "text_name_unique_idf_sum_max": np.maximum(*total),
        "text_name_unique_idf_sum_min": np.minimum(*total),
        "text_name_unique_idf_max": np.maximum(*largest),
    }
    return {k: np.where(unknown, np.nan, v).astype(np.float32) for k, v in out.items()}
