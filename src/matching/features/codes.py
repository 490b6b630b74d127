"""Feature group `codes` (`code_`): model numbers and other letter-and-digit tokens of names and
attribute values: shared, conflicting, fuzzy, near misses, found in the other's text."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.dtypes import StringDType
from rapidfuzz import fuzz
from rapidfuzz.distance import Prefix
from rapidfuzz.process import cpdist

from matching.features.arrays import Arrays, in_chunks, jaccard, ratio, shared_counts
from matching.features.products import ProductTables


def code_group(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    """Model numbers and other letter-and-digit tokens: shared, conflicting, fuzzy, found in the other's text."""
    return in_chunks(rows, lambda chunk: _code_chunk(chunk, tables))


def _code_chunk(rows: list[np.ndarray], tables: ProductTables) -> Arrays:
    counts = shared_counts(rows, tables.codes, "code")
    both = (counts["a"] > 0) & (counts["b"] > 0)
    a, b = tables.code_strings[np.maximum(rows[0], 0)], tables.code_strings[np.maximum(rows[1], 0)]
    fuzzy = cpdist(list(a), list(b), scorer=fuzz.token_set_ratio, workers=-1, dtype=np.float32) / 100.0
    return {
        "code_shared": counts["shared"],
        "code_min": np.minimum(counts["a"], counts["b"]),
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
    texts = [np.array(tables.flat_text(r), dtype=StringDType()) for r in rows]
    shares = []
    for side, other in ((0, 1), (1, 0)):
        items = tables.codes.of_pairs(rows[side], ["code"])
        pair = items["pair"].to_numpy()
        code_texts = np.array(tables.code_texts[items["code"].to_numpy()], dtype=StringDType())
        found = np.strings.find(texts[other][pair], code_texts) >= 0  # one C loop over every (pair, code)
        shares.append(
            ratio(np.bincount(pair, weights=found, minlength=len(rows[0])), np.bincount(pair, minlength=len(rows[0])))
        )
    out = np.fmax(*shares)
    out[(rows[0] < 0) | (rows[1] < 0)] = np.nan
    return out.astype(np.float32)
