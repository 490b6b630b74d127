"""Sentence-transformers encoding: a hub name or a local folder, each distinct text once, resumable."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from matching import THREADS
from matching.device import resolve_device
from matching.encoders.base import TextEncoder
from matching.errors import ConfigError
from matching.io import atomic_path

PRECISIONS = ("float32", "bfloat16", "int8")


def readable_tokens(module) -> int:
    """The most tokens a SentenceTransformer's first module reads: its position embeddings or its
    tokenizer's limit, as sentence-transformers reckons its own default (a local model may have fewer
    than params ask for: more tokens would fail inside the model). A module with neither (static
    embeddings) sets no limit."""
    config = getattr(getattr(module, "auto_model", None), "config", None)
    limits = [getattr(config, "max_position_embeddings", None)]
    limits.append(getattr(getattr(module, "tokenizer", None), "model_max_length", None))
    return min((limit for limit in limits if limit), default=10**9)


def load_sentence_transformer(
    model: str, device: str, max_length: int, precision: str = "float32", source: str = "params.yaml: embed model"
):
    """A SentenceTransformer from a hub name or a local folder, at the given precision.

    int8 is dynamic quantisation of the linear layers (CPU); bfloat16 halves the weights (GPU, or
    CPUs with bf16 units). Torch runs `MATCHING_THREADS` threads.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    if precision not in PRECISIONS:
        raise ConfigError(f"params.yaml: embed precision {precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
    torch.set_num_threads(THREADS)
    device = resolve_device(device)
    try:
        encoder = SentenceTransformer(model, device=device)
    except (OSError, ValueError) as error:  # an unreachable hub, a name that is not a model, a broken folder
        where = "the folder exists but holds no loadable model" if Path(model).exists() else "not a local folder"
        raise ConfigError(
            f"{source} {model!r} cannot be loaded ({where}; {str(error).splitlines()[0]}); "
            "without a network, download it where there is one and set the model to its local folder, "
            "or use the offline encoder (encoder=lexical)"
        ) from None
    encoder.max_seq_length = min(max_length, readable_tokens(encoder[0]))
    if precision == "bfloat16":
        encoder = encoder.to(torch.bfloat16)
    elif precision == "int8":
        if device != "cpu":
            raise ConfigError(
                "params.yaml: int8 precision runs on the CPU only; set embed.device: cpu or another precision"
            )
        with warnings.catch_warnings():  # deprecated in favour of torchao, still present in the pinned torch
            warnings.simplefilter("ignore")
            encoder = torch.ao.quantization.quantize_dynamic(encoder, {torch.nn.Linear}, dtype=torch.qint8)
    return encoder.eval()


def sentence_transformer_encoder(
    model: str,
    device: str,
    batch_size: int,
    max_length: int,
    precision: str = "float32",
    cache_dir: Path | None = None,
    source: str = "params.yaml: embed model",
) -> TextEncoder:
    """Length-sorted chunks of distinct texts through a SentenceTransformer.

    With `cache_dir`, every finished chunk is saved there, so a run that is killed resumes where it
    stopped; the folder is keyed by model, settings and texts, and removed once all are encoded.
    `source` names where the model was set, for the error a model that does not load gets.
    """
    import torch

    encoder = load_sentence_transformer(model, device, max_length, precision, source)
    # Renamed in sentence-transformers 6; older releases have only the long name.
    dimension = getattr(encoder, "get_embedding_dimension", encoder.get_sentence_embedding_dimension)()

    def encode(texts: Sequence[str]) -> np.ndarray:
        order = np.argsort([len(t) for t in texts], kind="stable")
        vectors = np.empty((len(texts), dimension), dtype=np.float32)
        chunk = batch_size * 16
        folder = None
        if cache_dir is not None:
            key = hashlib.sha256(json.dumps([model, max_length, precision, chunk]).encode())
            for text in texts:
                key.update(text.encode("utf-8", "surrogatepass") + b"\0")
            folder = Path(cache_dir) / key.hexdigest()[:16]
            folder.mkdir(parents=True, exist_ok=True)
        with torch.inference_mode(), tqdm(total=len(texts), desc=f"encode {model}", unit="text") as progress:
            for number, start in enumerate(range(0, len(texts), chunk)):
                rows = order[start : start + chunk]
                saved = folder / f"chunk_{number:06d}.npy" if folder else None
                if saved is not None and saved.exists():
                    vectors[rows] = np.load(saved, allow_pickle=False)
                else:
                    vectors[rows] = encoder.encode(
                        [texts[i] for i in rows], batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
                    ).astype(np.float32)
                    if saved is not None:
                        with atomic_path(saved) as tmp:
                            with open(tmp, "wb") as handle:
                                np.save(handle, vectors[rows], allow_pickle=False)
                progress.update(len(rows))
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        return vectors

    return encode
