"""New products: those a pairs file names (or every card of a folder), read from a folder in the
archive's format and embedded by the trained repository's saved encoders, into what the features and
the networks read.

Only the named products are kept: a row group of a product file is skipped when its id statistics or
its id column hold none of them, and the rest are cut to them batch by batch. Nothing is fitted.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from matching.data import contract, raw
from matching.data.ids import contains, distinct_ids
from matching.data.products import build_products
from matching.encoders.base import STATIC, UNFITTED, TextEncoder, encode_distinct, no_text_encoder
from matching.encoders.lexical import LexicalEncoder
from matching.encoders.names import name_vectors
from matching.encoders.photos import photo_vectors
from matching.encoders.texts import modality_texts
from matching.errors import DataError, StageError

log = logging.getLogger(__name__)


@dataclass
class NewProducts:
    products: pd.DataFrame  # as the prepared products table: sorted by variantid, Arrow-backed columns
    embeddings: dict[str, dict[str, np.ndarray]]  # modality -> variantid and vectors, as data/embeddings
    photo_sets: dict[str, np.ndarray]  # as data/embeddings/photo_sets.npz


def saved_text_encoder(folder: Path, device: str, static_model: Path) -> TextEncoder:
    """The encoder embed_text saved: the fitted lexical encoder, the transformer it names, or the static
    model distilled into `static_model`."""
    if (folder / "lexical.npz").exists():
        return LexicalEncoder.load(folder / "lexical.npz").encode
    if (folder / UNFITTED).exists():
        return no_text_encoder
    if (folder / STATIC).exists():
        from matching.encoders.static import static_encoder

        return static_encoder(static_model, json.loads((folder / STATIC).read_text())["max_length"])
    if (folder / "transformer.json").exists():
        from matching.encoders.transformer import sentence_transformer_encoder

        settings = json.loads((folder / "transformer.json").read_text())
        return sentence_transformer_encoder(
            settings["model"],
            device,
            settings.get("batch_size", 64),
            settings["max_length"],
            settings["precision"],
            source=f"{folder / 'transformer.json'}: model",
        )
    raise StageError(f"{folder}: no saved encoder; run `dvc repro` in the trained repository first")


def new_products(
    raw_dir: Path,
    wanted: np.ndarray,
    encoders: dict[str, TextEncoder],
    check_known: Callable[[np.ndarray], None] | None = None,
    fix: str = "point --products at a folder holding the archive's product files",
) -> NewProducts:
    """The `wanted` products from the archive folder `raw_dir`, with their name vectors, photo vectors
    and sets, and each text modality encoded by its saved encoder (`encoders`). `check_known` gets
    the sorted ids the attributes file holds and refuses what it must (a pair naming a product the
    files lack, as in prepare). `fix` says how to give another folder (the flag or the param that named it)."""
    missing = [f"{name}.parquet" for name in raw.PRODUCT_FILES if not raw.product_file_paths(raw_dir, name)]
    if missing:
        raise DataError(f"{raw_dir}: missing {', '.join(missing)}; {fix}")
    wanted = distinct_ids(np.asarray(wanted, dtype=np.int64))
    labels = (str(raw_dir / "attributes.parquet"), str(raw_dir / "text_and_bert.parquet"))
    attribute_columns = ("categories", "characteristic_attributes_mapping")
    attributes = raw.read_product_rows(raw_dir, "attributes", attribute_columns, wanted)
    known = contract.check_ids(attributes, "variantid", labels[0], unique=True)
    if check_known is not None:
        check_known(np.sort(known))
    text = raw.read_product_rows(raw_dir, "text_and_bert", ("name", "description", "name_bert_64"), wanted)
    table = build_products(attributes, known, wanted, text.select(["variantid", "name", "description"]), labels)
    text_ids = text.column("variantid").to_numpy().astype(np.int64)
    without_text = int((~contains(np.sort(text_ids), known)).sum())
    if without_text:  # prepare counts these in the data report; here a log line says so
        log.warning(
            f"{labels[1]}: {without_text} of {len(known)} products have no row; they are scored without "
            "their name, description and name vector"
        )
    embeddings = {"names": {"variantid": wanted, "vectors": name_vectors([(labels[1], text_ids, text)], wanted)}}
    photo_batches = raw.raw_batches_for(
        raw_dir, "resnet", [contract.MAIN_PHOTO, contract.EXTRA_PHOTOS], wanted, skip_groups=True
    )
    with tempfile.TemporaryFile() as spill:
        vectors, sets = photo_vectors(photo_batches, wanted, spill)
        stream = sets["photos"]
        sets["photos"] = np.concatenate([np.empty((0,) + stream.shape[1:], stream.dtype), *stream.chunks])
    embeddings["photos"] = {"variantid": wanted, **vectors}
    texts = table.select(["variantid", "attributes", "description"]).to_pandas()
    for modality, encoder in encoders.items():
        embeddings[modality] = {
            "variantid": wanted,
            "vectors": encode_distinct(modality_texts(modality, texts), encoder),
        }
    return NewProducts(table.to_pandas(types_mapper=pd.ArrowDtype), embeddings, sets)


def card_ids(raw_dir: Path) -> np.ndarray:
    """Every product id of a folder of new cards (its attributes file, either layout), once each."""
    if not raw.product_file_paths(raw_dir, "attributes"):
        raise DataError(f"{raw_dir}: no attributes.parquet; give a folder of cards in the archive's format")
    label = str(raw_dir / "attributes.parquet")
    ids = contract.check_ids(raw.read_product_file(raw_dir, "attributes", ("variantid",)), "variantid", label, True)
    if not len(ids):
        raise DataError(f"{label}: has no rows; give at least one product card")
    return np.sort(ids)


def joined(first: NewProducts, second: NewProducts) -> NewProducts:
    """Both sets of products as one, sorted by id (what the features look ids up in); a product in
    both is kept once, as `first` has it."""
    first_ids = first.products["variantid"].to_numpy(np.int64)
    second_kept = ~contains(np.sort(first_ids), second.products["variantid"].to_numpy(np.int64))
    products = pd.concat([first.products, second.products[second_kept]], ignore_index=True)
    products = products.sort_values("variantid", kind="stable", ignore_index=True)
    embeddings = {m: _stacked(first.embeddings[m], second.embeddings[m], first_ids) for m in first.embeddings}
    shifted = {**second.photo_sets, "starts": second.photo_sets["starts"] + len(first.photo_sets["photos"])}
    photo_sets = _stacked(
        {k: v for k, v in first.photo_sets.items() if k != "photos"},
        {k: v for k, v in shifted.items() if k != "photos"},
        first_ids,
    )
    photo_sets["photos"] = np.concatenate([first.photo_sets["photos"], second.photo_sets["photos"]])
    return NewProducts(products, embeddings, photo_sets)


def _stacked(first: dict[str, np.ndarray], second: dict[str, np.ndarray], first_ids: np.ndarray) -> dict:
    """Per-product arrays (a `variantid` array and rows aligned to it) of both, `second`'s rows of
    products `first` has left out, sorted by id."""
    kept = ~contains(np.sort(first_ids), second["variantid"])
    ids = np.concatenate([first["variantid"], second["variantid"][kept]])
    order = np.argsort(ids, kind="stable")
    return {name: np.concatenate([first[name], second[name][kept]])[order] for name in first}
