"""A product's card as one text: its name, its most common attributes and a description excerpt."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd

from matching.encoders.texts import clean_description, render_attributes

SEPARATOR = " | "  # between a card's name, its attributes and its description
CARD_COLUMNS = ["variantid", "name", "attributes", "description"]  # of the products table


def key_order(attributes: pd.Series) -> list[str]:
    """Attribute keys by how many products fill them, most first (ties by name)."""
    counts = Counter(key for text in attributes.dropna() for key in json.loads(text))
    return sorted(counts, key=lambda key: (-counts[key], key))


def card_texts(products: pd.DataFrame, keys: list[str], attribute_count: int, description_chars: int) -> np.ndarray:
    """Each product's card as one string, in the rows' order: name | key: values; ... | description
    excerpt. A key outside `keys` ranks after them; a missing part is left out. A loop parses each
    JSON dict: small beside the model's cost over the same cards."""
    rank = {key: i for i, key in enumerate(keys)}
    descriptions = clean_description(products["description"]) if description_chars else None
    texts = []
    for row, (name, attributes) in enumerate(zip(products["name"], products["attributes"])):
        parts = [name] if isinstance(name, str) and name else []
        if attribute_count and isinstance(attributes, str):
            mapping = json.loads(attributes)
            chosen = sorted(mapping, key=lambda key: (rank.get(key, len(rank)), key))[:attribute_count]
            if chosen:
                parts.append(render_attributes(mapping, chosen))
        if descriptions is not None and descriptions.iat[row]:
            parts.append(descriptions.iat[row][:description_chars])
        texts.append(SEPARATOR.join(parts))
    return np.array(texts, dtype=object)
