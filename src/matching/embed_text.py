"""Stage `embed_text@{attributes,descriptions}`: one vector per product for a text modality.

Attributes: the attribute dict written out as `key: value, value; ...` with keys sorted (sellers
list them in any order), punctuation kept. Descriptions: HTML stripped, entities unescaped,
emoji and extra whitespace removed. A product without the text gets a NaN row, not zeros.
"""
from __future__ import annotations

import argparse
import html
import json

import numpy as np
import pandas as pd

from matching import paths
from matching.encoders import encode_distinct, make_encoder
from matching.io import load_params, run_stage, write_arrays

TAG = r"<[^>]+>"
# Pictographs, symbols, dingbats, variation selectors and joiners: noise to a text encoder.
EMOJI = "[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200D]"


def attributes_text(mapping: pd.Series) -> pd.Series:
    """JSON attribute dicts as `key: v1, v2; key2: v3`, keys sorted; empty or null gives null."""
    def render(text: str | None) -> str | None:
        if text is None or pd.isna(text):
            return None
        parsed = json.loads(text)
        return "; ".join(f"{key}: {', '.join(map(str, parsed[key]))}" for key in sorted(parsed)) or None

    return pd.Series([render(t) for t in mapping], index=mapping.index, dtype=object)


def clean_description(descriptions: pd.Series) -> pd.Series:
    """Plain text from HTML descriptions; null or empty after cleaning gives null."""
    text = pd.Series(descriptions, dtype="string").str.replace(TAG, " ", regex=True)
    has_entity = text.str.contains("&", regex=False, na=False)
    text[has_entity] = text[has_entity].map(html.unescape)
    text = text.str.replace(EMOJI, " ", regex=True).str.replace(r"\s+", " ", regex=True).str.strip()
    text = text.where(text.str.len() > 0)
    return text.astype(object).where(text.notna(), None)


TEXT_OF = {"attributes": lambda p: attributes_text(p["attributes"]),
           "descriptions": lambda p: clean_description(p["description"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modality", choices=sorted(TEXT_OF))
    args = parser.parse_args(argv)
    params = load_params()
    embed = params["embed"]
    products = pd.read_parquet(paths.PRODUCTS, columns=["variantid", "attributes", "description"])
    texts = TEXT_OF[args.modality](products)
    encoder = make_encoder(embed[args.modality], embed["device"], embed["lexical"], int(params["seed"]),
                           paths.ENCODE_CACHE / args.modality)
    vectors = encode_distinct(texts, encoder)
    write_arrays({"variantid": products["variantid"].to_numpy(np.int64), "vectors": vectors},
                 paths.embedding_file(args.modality))
    print(f"embed {args.modality}: {texts.notna().sum()} texts ({texts.nunique()} distinct) of {len(texts)} "
          f"products -> {vectors.shape[1]} dims with {embed[args.modality]['backend']}")


if __name__ == "__main__":
    run_stage(main)
