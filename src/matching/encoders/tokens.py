"""Texts to token ids, and padded token-id batches for a transformer, with no Python work per text.

Most of a corpus's words repeat, so each distinct whitespace-separated word of a block of texts is
tokenized once and a text's tokens are its words' tokens in order (`words_token_ids`): what the
tokenizer gives the whole text wherever its words are tokenized apart (BERT's WordPiece,
SentencePiece's Metaspace with its split), at a fraction of the cost. `TextTokenizer` checks that on
a sample of the texts and otherwise tokenizes whole texts. For a GPU, blocks are tokenized in worker
processes (turning ids into Python lists holds the interpreter's lock, and one process could not keep
a GPU busy); padded batches are cut with numpy alone. This module imports nothing heavy, so that a
worker process starts quickly.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from concurrent.futures import Executor
from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from matching.parallel import spawned_pool

SAMPLE_TEXTS = 1000  # texts the word path is checked on against the tokenizer's own


def prepared(texts: Sequence[str], cut: int, lower: bool) -> list[str]:
    """Texts cut to `cut` characters (a tokenizer reads a whole string before it truncates), stripped,
    lowercased if the model's module asks for it."""
    return [text[:cut].strip().lower() if lower else text[:cut].strip() for text in texts]


def token_ids(tokenizer, texts: Sequence[str], special: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Each text's token ids one after another (int64) and each text's count."""
    lists = [encoding.ids for encoding in tokenizer.encode_batch(list(texts), add_special_tokens=special)]
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    return np.fromiter(chain.from_iterable(lists), dtype=np.int64, count=int(lengths.sum())), lengths


def words_token_ids(tokenizer, texts: Sequence[str] | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Each text's tokens (no special tokens) as the tokens of its whitespace-separated words, each
    distinct word tokenized once: flat ids (int64) and each text's count."""
    pieces = pc.utf8_split_whitespace(texts if isinstance(texts, pa.Array) else pa.array(texts, pa.large_string()))
    encoded = pc.dictionary_encode(pieces.flatten())
    word_tokens, word_counts = token_ids(tokenizer, encoded.dictionary.to_pylist(), special=False)
    word_starts = np.cumsum(word_counts) - word_counts
    occurrences = encoded.indices.to_numpy()
    counts = word_counts[occurrences]  # every word of every text, in order: its tokens
    ends = np.concatenate([[0], np.cumsum(counts)])
    ids = word_tokens[np.repeat(word_starts[occurrences] - ends[:-1], counts) + np.arange(int(ends[-1]))]
    bounds = pieces.offsets.to_numpy().astype(np.int64)
    return ids, ends[bounds[1:]] - ends[bounds[:-1]]


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text's own tokens ([CLS] and [SEP] for BERT)."""
    plain = tokenizer.encode("a", add_special_tokens=False).ids
    full = tokenizer.encode("a", add_special_tokens=True).ids
    at = next(i for i in range(len(full) - len(plain) + 1) if full[i : i + len(plain)] == plain)
    return full[:at], full[at + len(plain) :]


def with_special_tokens(
    ids: np.ndarray, counts: np.ndarray, before: list[int], after: list[int], max_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each text's first tokens framed by the special ones, at most `max_length` in all, as the
    tokenizer truncates: flat ids and each text's length."""
    kept = np.minimum(counts, max(max_length - len(before) - len(after), 0))
    lengths = kept + len(before) + len(after)
    out = np.empty(int(lengths.sum()), dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    for offset, token in enumerate(before):
        out[starts + offset] = token
    for offset, token in enumerate(after):
        out[starts + len(before) + kept + offset] = token
    position = np.arange(len(ids)) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = position < np.repeat(kept, counts)
    out[np.repeat(starts + len(before), counts)[keep] + position[keep]] = ids[keep]
    return out, lengths


class TextTokenizer:
    """A transformer's tokenizer (serialised `tokenizers` JSON) for many texts: ids with the special
    tokens, truncated to `max_length` as the tokenizer truncates, by distinct words where a sample of
    the texts shows that gives the tokenizer's own ids (`by_words` None: check on `sample`)."""

    def __init__(
        self, serialised: str, max_length: int, cut: int, lower: bool, by_words: bool | None, sample=()
    ) -> None:
        from tokenizers import Tokenizer

        self.words = Tokenizer.from_str(serialised)
        self.words.no_padding()
        self.words.no_truncation()
        self.whole = Tokenizer.from_str(self.words.to_str())
        self.whole.enable_truncation(max_length)
        self.serialised = self.words.to_str()
        self.special = special_tokens(self.whole)
        self.max_length, self.cut, self.lower = max_length, cut, lower
        if by_words is None:
            texts = prepared(sample, cut, lower)
            by_words_ids = with_special_tokens(*words_token_ids(self.words, texts), *self.special, max_length)
            by_words = all(np.array_equal(a, b) for a, b in zip(token_ids(self.whole, texts), by_words_ids))
        self.by_words = by_words

    def arrow(self, texts: Sequence[str]) -> pa.Array:
        """The texts `prepared`, as an Arrow array (what the word path splits with Arrow's kernels)."""
        return pa.array(prepared(texts, self.cut, self.lower), pa.large_string())

    def __call__(self, texts: Sequence[str] | pa.Array, by_words: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Flat ids (int64) and each text's length; an Arrow array holds texts already `prepared`."""
        if not isinstance(texts, pa.Array):
            texts = self.arrow(texts)
        if self.by_words if by_words is None else by_words:
            return with_special_tokens(*words_token_ids(self.words, texts), *self.special, self.max_length)
        return token_ids(self.whole, texts.to_pylist())

    def pool(self, processes: int) -> Executor:
        """`processes` processes, each holding this tokenizer (started afresh: the parent may hold a GPU);
        `worker_tokenize` runs it there. They read it from a file, removed with the pool: a spawned
        process's arguments go through a pipe that the parent fills while the child starts, so a
        tokenizer's megabytes there would start the processes one after another."""
        folder = tempfile.mkdtemp(prefix="matching-tokenizer-")
        path = os.path.join(folder, "tokenizer.json")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(self.serialised)
        pool = spawned_pool(processes, _start_worker, (path, self.max_length, self.cut, self.lower, True))
        weakref.finalize(pool, shutil.rmtree, folder, True)
        return pool


_WORKER: TextTokenizer | None = None  # a worker process's tokenizer


def _start_worker(path: str, max_length: int, cut: int, lower: bool, by_words: bool) -> None:
    global _WORKER
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread a process: the processes share the cores
    with open(path, encoding="utf-8") as handle:
        _WORKER = TextTokenizer(handle.read(), max_length, cut, lower, by_words)


def worker_tokenize(texts: list[str], by_words: bool) -> tuple[np.ndarray, np.ndarray]:
    """The pool's tokenizer on texts as they came (`prepared` here, beside the other processes)."""
    assert _WORKER is not None, "run in a TextTokenizer.pool process"
    return _WORKER(texts, by_words)


def padded_batches(
    ids: np.ndarray, lengths: np.ndarray, budget: int, pad: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(positions, token ids, attention mask) batches of texts of similar length, longest first, each
    of at most `budget` tokens with its padding."""
    order = np.argsort(-lengths, kind="stable")
    starts = np.cumsum(lengths) - lengths
    batches, first = [], 0
    while first < len(order):
        width = max(int(lengths[order[first]]), 1)
        members = order[first : first + max(1, budget // width)]
        counts = lengths[members]
        mask = np.arange(width) < counts[:, None]
        batch = np.full((len(members), width), pad, dtype=np.int64)
        offsets = np.repeat(starts[members] - (np.cumsum(counts) - counts), counts)
        batch[mask] = ids[offsets + np.arange(int(counts.sum()))]
        batches.append((members, batch, mask.astype(np.int64)))
        first += len(members)
    return batches
