"""The texts of the text modalities, cleaned for an encoder."""

from __future__ import annotations

import html
import json

import pandas as pd

from matching.parallel import in_processes

TAG = r"<[^>]+>"


# Pictographs, symbols, dingbats, variation selectors and joiners: noise to a text encoder.
EMOJI = "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f\u200d]"


def render_attributes(parsed: dict, keys: list[str]) -> str:
    """The attributes `keys` of one parsed dict as `key: v1, v2; key2: v3`, in the keys' order."""
    return "; ".join(f"{key}: {', '.join(map(str, parsed[key]))}" for key in keys)


def attributes_text(mapping: pd.Series) -> pd.Series:
    """JSON attribute dicts as `key: v1, v2; key2: v3`, keys sorted; empty or null gives null."""

    def render(text: str | None) -> str | None:
        if text is None or pd.isna(text):
            return None
        parsed = json.loads(text)
        return render_attributes(parsed, sorted(parsed)) or None

    return pd.Series([render(t) for t in mapping], index=mapping.index, dtype=object)


def clean_description(descriptions: pd.Series) -> pd.Series:
    """Plain text from HTML descriptions; null or empty after cleaning gives null."""
    text = pd.Series(descriptions, dtype="string").str.replace(TAG, " ", regex=True)
    has_entity = text.str.contains("&", regex=False, na=False)
    text[has_entity] = text[has_entity].map(html.unescape)
    text = text.str.replace(EMOJI, " ", regex=True).str.replace(r"\s+", " ", regex=True).str.strip()
    text = text.where(text.str.len() > 0)
    return text.astype(object).where(text.notna(), None)


# Each text modality: the products column it is made of, and how.
TEXT_OF = {
    "attributes": ("attributes", attributes_text),
    "descriptions": ("description", clean_description),
}


TEXT_CHUNK = 100_000  # texts a worker process cleans at once


def modality_texts(modality: str, products: pd.DataFrame) -> pd.Series:
    """A text modality's cleaned texts of `products` (which need only that modality's column). The
    cleaning is Python string work, so chunks of texts go to worker processes (`in_processes`); a
    text's cleaning depends on that text alone."""
    column, clean = TEXT_OF[modality]
    values = products[column]
    # No texts still make one (empty) chunk: the cleaned series keeps its dtype and index.
    chunks = (values.iloc[start : start + TEXT_CHUNK] for start in range(0, max(len(values), 1), TEXT_CHUNK))
    return pd.concat(list(in_processes(clean, chunks)))
