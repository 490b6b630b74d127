"""Static embeddings distilled from a sentence-transformer: the seed's encoders at lookup speed.

`distill` runs the configured transformer once over every token of its vocabulary (model2vec's
distillation: each token's mean-pooled output, reduced by PCA and weighted by its Zipf frequency), so
that a text is then encoded by looking up its tokens' vectors and taking their weighted mean: no
transformer at encoding time. `static_encoder` does that for many texts at once with a sparse
(texts x vocabulary) product, in chunks over `MATCHING_THREADS` threads; a text's vector is computed
the same way whatever the chunking or the thread count, so the bytes are too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy import sparse

from matching import THREADS
from matching.encoders.base import TOKEN_CHARS, TextEncoder, unloadable_model
from matching.encoders.tokens import words_token_ids
from matching.errors import StageError
from matching.manifest import check_manifest, write_manifest

log = logging.getLogger(__name__)

CHUNK_TEXTS = 20_000  # texts a thread tokenizes and pools at a time
DISTILL_STAGE = "distill"
UNUSED = "unused.json"  # the distill stage's marker when the backend is not static


def distill(model: str, dims: int, sif_coefficient: float, device: str, folder: Path) -> None:
    """Distil the sentence-transformer `model` (a hub name or a local folder) into a static model of
    `dims` dimensions saved in `folder` (model2vec's format)."""
    import torch
    from model2vec.distill import distill as model2vec_distill

    from matching.device import resolve_device

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    try:
        static = model2vec_distill(
            model, pca_dims=dims, sif_coefficient=sif_coefficient, device=resolve_device(device), quantize_to="float16"
        )
    except (OSError, ValueError) as error:
        raise unloadable_model("params.yaml: embed model", model, error, "distilled") from None
    static.save_pretrained(str(folder))
    write_manifest(folder, sorted(path.name for path in folder.iterdir()))


class StaticModel:
    """A distilled model's tokenizer, token vectors and token weights, loaded from its folder."""

    def __init__(self, folder: Path):
        from model2vec import StaticModel as Model2Vec

        if not (folder / "model.safetensors").exists():
            raise StageError(f"{folder}: no distilled static model; run `dvc repro {DISTILL_STAGE}` first")
        check_manifest(folder, DISTILL_STAGE)
        try:
            model = Model2Vec.from_pretrained(str(folder))
        except (OSError, ValueError, KeyError) as error:
            raise StageError(
                f"{folder}: the distilled static model cannot be loaded ({str(error).splitlines()[0]}); "
                f"run `dvc repro --force {DISTILL_STAGE}` to distil it again"
            ) from None
        self.tokenizer = model.tokenizer
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        vocabulary = model.tokenizer.get_vocab_size()
        self.vectors = np.asarray(model.embedding, dtype=np.float32)
        mapping = getattr(model, "token_mapping", None)
        if mapping is not None:  # a quantised vocabulary: tokens share vectors
            self.vectors = self.vectors[np.asarray(mapping)]
        weights = model.weights
        self.weights = np.ones(vocabulary, np.float32) if weights is None else np.asarray(weights, np.float32)
        self.normalize = bool(model.normalize)
        self.unknown = model.unk_token_id
        self.dim = self.vectors.shape[1]

    def token_ids(self, texts: Sequence[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
        """The ids of each text's first `max_length` known tokens, flat, and each text's token count
        (each distinct word tokenized once, `matching.encoders.tokens.words_token_ids`)."""
        ids, counts = words_token_ids(self.tokenizer, [text[: max_length * TOKEN_CHARS] for text in texts])
        text_of = np.repeat(np.arange(len(texts)), counts)
        if self.unknown is not None:  # model2vec drops unknown tokens before truncating
            known = ids != self.unknown
            ids, text_of = ids[known], text_of[known]
        starts = np.searchsorted(text_of, np.arange(len(texts)))
        position = np.arange(len(ids)) - starts[text_of]
        keep = position < max_length
        return ids[keep], np.bincount(text_of[keep], minlength=len(texts))

    def encode(self, texts: Sequence[str], max_length: int) -> np.ndarray:
        """The weighted mean of each text's token vectors (unit length if the model says so); a text of
        no known token gets zeros, as model2vec gives it."""
        ids, counts = self.token_ids(texts, max_length)
        rows = np.repeat(np.arange(len(texts)), counts)
        tokens = sparse.csr_matrix((self.weights[ids], (rows, ids)), shape=(len(texts), len(self.weights)))
        vectors = np.asarray(tokens @ self.vectors, dtype=np.float32)
        vectors /= np.maximum(counts, 1)[:, None]
        if self.normalize:
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + np.float32(1e-32)
        return vectors


def static_encoder(folder: Path, max_length: int, threads: int = THREADS) -> TextEncoder:
    """Texts through the static model distilled into `folder`, `CHUNK_TEXTS` at a time in `threads` threads."""
    model = StaticModel(folder)

    def encode(texts: Sequence[str]) -> np.ndarray:
        chunks = -(-len(texts) // CHUNK_TEXTS)
        # Each chunk tokenized in its own thread: the tokenizer's shared pool of threads would serialise them.
        before = os.environ.get("TOKENIZERS_PARALLELISM")
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        vectors = np.empty((len(texts), model.dim), np.float32)

        def encode_chunk(start: int) -> None:
            vectors[start : start + CHUNK_TEXTS] = model.encode(texts[start : start + CHUNK_TEXTS], max_length)

        try:
            with ThreadPoolExecutor(max(1, min(threads, chunks))) as pool:
                list(pool.map(encode_chunk, range(0, len(texts), CHUNK_TEXTS)))
            return vectors
        finally:
            if before is None:
                os.environ.pop("TOKENIZERS_PARALLELISM", None)
            else:
                os.environ["TOKENIZERS_PARALLELISM"] = before

    return encode
