"""Sentence-transformers encoding: a hub name or a local folder, each distinct text once, resumable."""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import shutil
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import Executor, Future
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from matching import THREADS
from matching.device import resolve_device
from matching.encoders.base import TOKEN_CHARS, TextEncoder, unloadable_model
from matching.encoders.tokens import SAMPLE_TEXTS, TextTokenizer, padded_batches, worker_tokenize
from matching.errors import ConfigError
from matching.io import atomic_path

log = logging.getLogger(__name__)

PRECISIONS = ("float32", "bfloat16", "int8")
BLOCK_TEXTS = 65_536  # texts tokenized at a time; a killed run resumes from the last finished block


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
    except (OSError, ValueError) as error:
        raise unloadable_model(source, model, error) from None
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


class Batches:
    """Distinct texts in batches of similar length, each made while the model runs the one before.

    Texts are ordered by characters and tokenized a block at a time (`matching.encoders.tokens`: by
    distinct words where that gives the tokenizer's own ids; for a GPU in worker processes, every block
    handed to them at once). A block is re-sorted by tokens and cut into batches of at most `budget`
    tokens (padding included), padded and, for a GPU, pinned, in a thread beside the model's.
    """

    def __init__(
        self, tokenizer, texts: Sequence[str], max_length: int, budget: int, pin: bool, lower: bool, pool=None
    ):
        self.order = np.argsort(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), kind="stable")
        self.texts = [texts[i] for i in self.order.tolist()]  # in the blocks' order (a list's index is an int)
        sample = self.texts[:: max(1, len(texts) // SAMPLE_TEXTS)]
        serialised = tokenizer.backend_tokenizer.to_str()
        self.tokenize = TextTokenizer(serialised, max_length, max_length * TOKEN_CHARS, lower, None, sample)
        if not self.tokenize.by_words:
            log.info("tokenizing whole texts: this tokenizer splits words in context")
        self.pad = tokenizer.pad_token_id or 0
        self.budget, self.pin, self.pool = budget, pin, pool
        self.futures: dict[tuple[int, int], Future] = {}

    def submit(self, blocks: list[tuple[int, int]]) -> None:
        """Hand these blocks to the worker processes now (no pool: nothing to do), as they are: the
        pool's own thread sends them and the processes prepare them, so that this one starts the model
        sooner."""
        if self.pool is not None:
            for start, stop in blocks:
                texts = self.texts[start:stop]
                self.futures[start, stop] = self.pool.submit(worker_tokenize, texts, self.tokenize.by_words)

    def block(self, start: int, stop: int) -> list[tuple]:
        """The batches of texts `start` to `stop` (in character order): (positions among them, token ids,
        attention mask) tensors."""
        import torch

        future = self.futures.pop((start, stop), None)
        ids, lengths = future.result() if future is not None else self.tokenize(self.texts[start:stop])
        batches = []
        for members, batch, mask in padded_batches(ids, lengths, self.budget, self.pad):
            tensors = [torch.from_numpy(array) for array in (members, batch, mask)]
            # Pinned, so that their copies to the GPU do not wait for it (a pageable copy does).
            batches.append(tuple(tensor.pin_memory() for tensor in tensors) if self.pin else tuple(tensors))
        return batches

    def blocks(self, size: int) -> list[tuple[int, int]]:
        """(start, stop) of each block of `size` texts in character order."""
        return [(start, min(start + size, len(self.texts))) for start in range(0, len(self.texts), size)]

    def rows(self, block: tuple[int, int]) -> np.ndarray:
        """The caller's rows of a block's texts."""
        return self.order[block[0] : block[1]]

    def close(self) -> None:
        for future in self.futures.values():
            future.cancel()


def prefetched(make, items: list, depth: int = 2):
    """`make(item)` for each item, made in a thread `depth` items ahead of the consumer."""
    results: queue.Queue = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for item in items:
                results.put((True, make(item)))
        except BaseException as error:  # handed to the consumer, raised there
            results.put((False, error))

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    for _ in items:
        ok, value = results.get()
        if not ok:
            raise value
        yield value
    worker.join()


def tokenizer_pool(encoder, lower: bool, processes: int | None = None) -> Executor | None:
    """For a GPU, `MATCHING_THREADS` worker processes (or `processes`, on any device) that tokenize
    blocks of texts as `Batches` does, started once for every call of the encoder; on a CPU (or one
    thread) none: the model needs every core, tokenizing little of them."""
    if processes is None:
        if encoder.device.type != "cuda" or THREADS < 2:
            return None
        processes = THREADS
    max_length = encoder.max_seq_length
    serialised = encoder.tokenizer.backend_tokenizer.to_str()
    pool = TextTokenizer(serialised, max_length, max_length * TOKEN_CHARS, lower, by_words=True).pool(processes)
    for _ in range(processes):  # each starts now (one a task), beside the caller's work before its first block
        pool.submit(int)
    return pool


def log_estimate(model: str, device: str, done: int, seconds: float, remaining: int) -> None:
    """After the first block: the time the rest will take at its rate, and on a CPU the faster choice."""
    rate = done / max(seconds, 1e-9)
    minutes = remaining / rate / 60
    advice = "; `-S encoder=static` encodes them in minutes" if device == "cpu" and minutes > 30 else ""
    log.info(
        f"encode {model}: {rate:.0f} texts/s on {device}, about {minutes:.0f} min for the other {remaining}{advice}"
    )


def sentence_transformer_encoder(
    model: str,
    device: str,
    batch_size: int,
    max_length: int,
    precision: str = "float32",
    cache_dir: Path | None = None,
    source: str = "params.yaml: embed model",
) -> TextEncoder:
    """Distinct texts through a SentenceTransformer's modules, in batches of similar length.

    A batch holds at most `batch_size x max_length` tokens, so short texts go in large batches. On a GPU
    the batches are pinned and copied without waiting, and the vectors stay there until a block ends,
    then come back while the next block runs.
    With `cache_dir`, every finished block is saved there, so a run that is killed resumes where it
    stopped; the folder is keyed by model, settings and texts, and removed once all are encoded.
    `source` names where the model was set, for the error a model that does not load gets.
    """
    import torch

    encoder = load_sentence_transformer(model, device, max_length, precision, source)
    # Renamed in sentence-transformers 6; older releases have only the long name.
    dimension = getattr(encoder, "get_embedding_dimension", encoder.get_sentence_embedding_dimension)()
    on_gpu = encoder.device.type == "cuda"
    lower = bool(getattr(encoder[0], "do_lower_case", False))
    pool = tokenizer_pool(encoder, lower)

    def encode(texts: Sequence[str]) -> np.ndarray:
        vectors = np.empty((len(texts), dimension), dtype=np.float32)
        budget = batch_size * max_length
        batches = Batches(encoder.tokenizer, texts, encoder.max_seq_length, budget, on_gpu, lower, pool)
        block_texts = BLOCK_TEXTS
        folder = None
        if cache_dir is not None:
            key = hashlib.sha256(json.dumps([model, max_length, precision, batch_size, block_texts]).encode())
            for text in texts:
                key.update(text.encode("utf-8", "surrogatepass") + b"\0")
            folder = Path(cache_dir) / key.hexdigest()[:16]
            folder.mkdir(parents=True, exist_ok=True)
        blocks = batches.blocks(block_texts)
        saved = [folder / f"block_{number:06d}.npy" if folder else None for number in range(len(blocks))]
        todo = [number for number, path in enumerate(saved) if path is None or not path.exists()]
        for number, path in enumerate(saved):
            if number not in todo and path is not None:
                vectors[batches.rows(blocks[number])] = np.load(path, allow_pickle=False)
        started = time.perf_counter()

        def finish(number: int, host, copied) -> None:
            """A block's vectors in place, and saved, once their copy from the device has arrived."""
            if copied is not None:
                copied.synchronize()
            rows = batches.rows(blocks[number])
            vectors[rows] = host.numpy()
            if number == todo[0] and len(todo) > 1:
                rest = sum(len(batches.rows(blocks[later])) for later in todo[1:])
                log_estimate(model, encoder.device.type, len(rows), time.perf_counter() - started, rest)
            path = saved[number]
            if path is not None:
                with atomic_path(path) as tmp:
                    with open(tmp, "wb") as handle:
                        np.save(handle, vectors[rows], allow_pickle=False)

        pending = None  # the last block whose vectors are on their way to the host
        try:
            with torch.inference_mode(), tqdm(total=len(texts), desc=f"encode {model}", unit="text") as progress:
                progress.update(len(texts) - sum(len(batches.rows(blocks[number])) for number in todo))
                batches.submit([blocks[number] for number in todo])
                for number, block in zip(todo, prefetched(lambda n: batches.block(*blocks[n]), todo)):
                    out = torch.empty(
                        (len(batches.rows(blocks[number])), dimension), dtype=torch.float32, device=encoder.device
                    )
                    for at, ids, mask in block:
                        features = {
                            "input_ids": ids.to(encoder.device, non_blocking=True),
                            "attention_mask": mask.to(encoder.device, non_blocking=True),
                        }
                        at = at.to(encoder.device, non_blocking=True)
                        out[at] = encoder(features)["sentence_embedding"].float()
                        progress.update(len(at))
                    # The block's copy to the host (pinned) is queued behind its batches, and the block
                    # before it is put in place (and saved) once these are queued: the device does not
                    # wait while the host does that. On a CPU the copy is the block itself.
                    host = out.to("cpu", non_blocking=True)
                    copied = torch.cuda.Event() if on_gpu else None
                    if copied is not None:
                        copied.record()
                    previous, pending = pending, (number, host, copied)
                    if previous is not None:
                        finish(*previous)
        finally:
            batches.close()
            if pending is not None:  # stopped too: its vectors are computed, so saved for a resumed run
                finish(*pending)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        return vectors

    return encode
