"""Stage `embed_text@{attributes,descriptions}`: one vector per product for a text modality.

The texts are those of `matching.encoders.texts`; each distinct text is encoded once by the
configured backend (`embed.<modality>.backend`). A product without the text gets a NaN row, not zeros.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from matching import config, paths
from matching.config import Lexical, TextEmbedding
from matching.encoders.base import TextEncoder, encode_distinct
from matching.encoders.texts import TEXT_OF
from matching.io import run_stage, write_arrays


def make_encoder(
    settings: TextEmbedding, device: str, lexical: Lexical, seed: int, cache_dir: Path | None = None
) -> TextEncoder:
    """The encoder `settings.backend` names (the config allows only these two)."""
    if settings.backend == "lexical":
        from matching.encoders.lexical import lexical_encoder

        return lexical_encoder(
            lexical.dim, lexical.ngram_min, lexical.ngram_max, lexical.max_features, seed, lexical.fit_sample
        )
    from matching.encoders.transformer import sentence_transformer_encoder

    return sentence_transformer_encoder(
        settings.model, device, settings.batch_size, settings.max_length, settings.precision, cache_dir
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modality", choices=sorted(TEXT_OF))
    args = parser.parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params)
    settings = getattr(cfg.embed, args.modality)
    products = pd.read_parquet(layout.products, columns=["variantid", "attributes", "description"])
    texts = TEXT_OF[args.modality](products)
    encoder = make_encoder(settings, cfg.embed.device, cfg.embed.lexical, cfg.seed, layout.encode_cache / args.modality)
    vectors = encode_distinct(texts, encoder)
    write_arrays(
        {"variantid": products["variantid"].to_numpy(np.int64), "vectors": vectors},
        layout.embedding_file(args.modality),
    )
    print(
        f"embed {args.modality}: {texts.notna().sum()} texts ({texts.nunique()} distinct) of {len(texts)} "
        f"products -> {vectors.shape[1]} dims with {settings.backend}"
    )


if __name__ == "__main__":
    run_stage(main)
