"""Stage `embed_text@{attributes,descriptions}`: one vector per product for a text modality.

The texts are those of `matching.encoders.texts`; each distinct text is encoded once by the
configured backend (`embed.<modality>.backend`). A product without the text gets a NaN row, not zeros.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from matching import config, paths
from matching.config import Lexical, TextEmbedding
from matching.encoders.base import STATIC, UNFITTED, TextEncoder, encode_distinct
from matching.encoders.lexical import LexicalEncoder
from matching.encoders.texts import TEXT_OF, modality_texts
from matching.io import write_json
from matching.npz import write_arrays
from matching.stage import run_stage

log = logging.getLogger(__name__)


def make_encoder(
    settings: TextEmbedding,
    device: str,
    lexical: Lexical,
    seed: int,
    cache_dir: Path | None = None,
    fitted: list | None = None,
    static_model: Path | None = None,
) -> TextEncoder:
    """The encoder `settings.backend` names; a lexical encoder fits on the texts it encodes and appends
    what it fitted to `fitted`; a static one reads the model the distill stage saved in `static_model`."""
    if settings.backend == "lexical":
        from matching.encoders.lexical import lexical_encoder

        return lexical_encoder(seed, fitted, **dataclasses.asdict(lexical))
    if settings.backend == "static":
        from matching.encoders.static import static_encoder

        assert static_model is not None, "the static backend reads the distill stage's folder"
        return static_encoder(static_model, settings.max_length)
    from matching.encoders.transformer import sentence_transformer_encoder

    return sentence_transformer_encoder(
        settings.model, device, settings.batch_size, settings.max_length, settings.precision, cache_dir
    )


def save_encoder(folder: Path, settings: TextEmbedding, lexical: LexicalEncoder | None) -> None:
    """The fitted lexical encoder, or the transformer's or static model's settings, alone in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        stale.unlink()
    if lexical is not None:
        lexical.save(folder / "lexical.npz")
    elif settings.backend == "lexical":  # no text to fit on: every product's vector is missing
        write_json({"backend": "lexical", "fitted": False}, folder / UNFITTED)
    elif settings.backend == "static":  # the model itself stays in the distill stage's folder
        write_json({"backend": "static", "model": settings.model, "max_length": settings.max_length}, folder / STATIC)
    else:
        write_json(
            {
                "backend": settings.backend,
                "model": settings.model,
                "batch_size": settings.batch_size,
                "max_length": settings.max_length,
                "precision": settings.precision,
            },
            folder / "transformer.json",
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modality", choices=sorted(TEXT_OF))
    args = parser.parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params)
    settings = getattr(cfg.embed, args.modality)
    products = pd.read_parquet(layout.products, columns=["variantid", TEXT_OF[args.modality][0]])
    texts = modality_texts(args.modality, products)
    del products[TEXT_OF[args.modality][0]]
    fitted: list = []
    encoder = make_encoder(
        settings,
        cfg.embed.device,
        cfg.embed.lexical,
        cfg.seed,
        layout.encode_cache / args.modality,
        fitted,
        layout.static_model(args.modality),
    )
    vectors = encode_distinct(texts, encoder)
    save_encoder(layout.encoder_dir(args.modality), settings, fitted[0] if fitted else None)
    write_arrays(
        {"variantid": products["variantid"].to_numpy(np.int64), "vectors": vectors},
        layout.embedding_file(args.modality),
    )
    log.info(
        f"embed {args.modality}: {texts.notna().sum()} texts ({texts.nunique()} distinct) of {len(texts)} "
        f"products -> {vectors.shape[1]} dims with {settings.backend}"
    )


if __name__ == "__main__":
    run_stage(main)
