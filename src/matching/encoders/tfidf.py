"""TF-IDF over Arrow strings with numpy and Arrow compute: scikit-learn's `TfidfVectorizer` analyzers
(`char_wb` n-grams, `word` tokens, lowercased; sublinear tf, smooth idf, rows L2-normalised) without
its per-text Python loop, which took most of the text stages' time at 2.25 M products.

Character n-grams are numbers, not strings: each character is replaced by its rank in the fitted
alphabet (16 bits), and an n-gram of up to 4 characters is its ranks packed into one uint64; terms are
counted and looked up with Arrow's hash kernels. Words stay Arrow strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse
from sklearn.preprocessing import normalize

from matching import THREADS

BITS = 16  # per character of a packed n-gram
MAX_NGRAM = 64 // BITS
OTHER = (1 << BITS) - 1  # rank of a character outside the alphabet: no n-gram holding it is kept
WORD_SEPARATORS = r"[^\p{L}\p{N}_]+"  # scikit-learn's token pattern (?u)\b\w+\b, as a split
UNICODE_SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f\x{85}\p{Z}]"  # Python's str.isspace(), as RE2 (its \s is ASCII)
WHITESPACE = UNICODE_SPACE + "+"  # what Python's str.split() splits on
ANALYZERS = ("char_wb", "word")  # their positions are what saved vocabularies hold
CHUNK_TEXTS = 25_000  # texts a worker thread takes at a time: numpy, Arrow and scipy release the GIL


@dataclass(frozen=True)
class TfidfVocabulary:
    """A fitted TF-IDF: the analyzer, its vocabulary (packed n-grams or words) and idf weights."""

    analyzer: str  # "char_wb" or "word"
    ngrams: tuple[int, int]
    alphabet: np.ndarray  # sorted code points of the characters n-grams may hold (char_wb)
    terms: np.ndarray | pa.Array  # sorted uint64 packed n-grams (char_wb) or words, most frequent first (word)
    idf: np.ndarray  # float32, one weight a term

    def transform(self, texts: pa.Array | Sequence[str | None], threads: int = THREADS) -> sparse.csr_matrix:
        """One L2-normalised row a text (float32); a null or empty text gives an empty row."""
        parts = in_text_chunks(self._transform_chunk, arrow_texts(texts), threads)
        if not parts:
            return sparse.csr_matrix((0, len(self.idf)), dtype=np.float32)
        return sparse.vstack(parts, format="csr") if len(parts) > 1 else parts[0]

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Plain numeric arrays (words as UTF-8 bytes and offsets) for `npz.write_arrays`: loading
        them back runs no code, unlike a pickled vectoriser."""
        if self.analyzer == "word":
            words = pa.array(self.terms, pa.large_string())
            offsets = np.frombuffer(words.buffers()[1], np.int64)[words.offset : words.offset + len(words) + 1]
            data = words.buffers()[2]
            utf8 = np.frombuffer(data, np.uint8)[offsets[0] : offsets[-1]] if data else np.zeros(0, np.uint8)
            terms = {"term_utf8": utf8.copy(), "term_offsets": offsets - offsets[0]}
        else:
            terms = {"terms": np.asarray(self.terms, np.uint64)}
        arrays = {
            "header": np.array([ANALYZERS.index(self.analyzer), *self.ngrams], np.int64),
            "alphabet": self.alphabet.astype(np.uint32),
            "idf": self.idf.astype(np.float32),
            **terms,
        }
        return {prefix + name: value for name, value in arrays.items()}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "") -> TfidfVocabulary:
        """The vocabulary `to_arrays` gave (from `npz.read_arrays`: memory-mapped, never unpickled)."""
        analyzer, low, high = (int(v) for v in arrays[prefix + "header"])
        if analyzer == ANALYZERS.index("word"):
            offsets = np.asarray(arrays[prefix + "term_offsets"], np.int64)
            utf8 = np.asarray(arrays[prefix + "term_utf8"], np.uint8)
            terms = pa.LargeStringArray.from_buffers(
                len(offsets) - 1, pa.py_buffer(offsets.tobytes()), pa.py_buffer(utf8.tobytes())
            )
        else:
            terms = np.array(arrays[prefix + "terms"], np.uint64)
        alphabet, idf = np.array(arrays[prefix + "alphabet"], np.uint32), np.array(arrays[prefix + "idf"], np.float32)
        return cls(ANALYZERS[analyzer], (low, high), alphabet, terms, idf)

    def _transform_chunk(self, texts: pa.Array) -> sparse.csr_matrix:
        docs, columns = self._term_columns(texts)
        counts = sparse.csr_matrix(
            (np.ones(len(docs), dtype=np.float32), (docs, columns)), shape=(len(texts), len(self.idf))
        )
        counts.sum_duplicates()
        counts.data = (1.0 + np.log(counts.data)) * self.idf[counts.indices]
        return normalize(counts, copy=False)

    def _term_columns(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """(text, vocabulary column) of every term occurrence that is in the vocabulary."""
        if self.analyzer == "word":
            docs, terms = _words(texts, WORD_SEPARATORS)
        else:
            docs, grams = _char_wb_ngrams(texts, self.alphabet, self.ngrams)
            terms = pa.array(grams)
        columns = pc.index_in(terms, value_set=pa.array(self.terms))  # a hash lookup, cheaper than a binary search
        found = pc.is_valid(columns).to_numpy(zero_copy_only=False)
        return docs[found], columns.drop_null().to_numpy().astype(np.int64)


def fit_tfidf_vocabulary(
    texts: pa.Array | Sequence[str | None], analyzer: str, ngrams: tuple[int, int], max_features: int
) -> TfidfVocabulary | None:
    """The `max_features` most frequent terms of `texts` (ties by term) and their smooth idf; None when
    the texts hold no term at all."""
    if analyzer not in ANALYZERS:
        raise ValueError(f"analyzer {analyzer!r}: use 'char_wb' or 'word'")
    if not 1 <= ngrams[0] <= ngrams[1] <= MAX_NGRAM:
        raise ValueError(f"n-gram range {ngrams}: use 1 <= min <= max <= {MAX_NGRAM}")
    texts = arrow_texts(texts)
    if analyzer == "word":
        _, words = _words(texts, WORD_SEPARATORS)
        counts = pc.value_counts(words).flatten()
        table = pa.table({"term": counts[0], "count": counts[1]})
        top = table.sort_by([("count", "descending"), ("term", "ascending")]).slice(0, max_features)
        terms = top["term"].combine_chunks()
        vocabulary = TfidfVocabulary(analyzer, ngrams, np.zeros(0, np.uint32), terms, np.ones(len(terms), np.float32))
    else:
        alphabet = _alphabet(texts)
        chunks = in_text_chunks(
            lambda part: pc.value_counts(
                pa.array(_char_wb_ngrams(part, alphabet, ngrams, keep_other=False)[1])
            ).flatten(),
            texts,
        )
        totals = (
            pa.table(
                {
                    "gram": pa.chunked_array([c[0] for c in chunks], pa.uint64()),
                    "count": pa.chunked_array([c[1] for c in chunks], pa.int64()),
                }
            )
            .group_by("gram")
            .aggregate([("count", "sum")])
        )
        grams, counts = totals["gram"].to_numpy(), totals["count_sum"].to_numpy()
        top = np.lexsort((grams, -counts))[:max_features]
        terms = np.sort(grams[top])
        vocabulary = TfidfVocabulary(analyzer, ngrams, alphabet, terms, np.ones(len(terms), np.float32))
    if len(vocabulary.idf) == 0:
        return None
    document_frequency = np.bincount(vocabulary.transform(texts).indices, minlength=len(vocabulary.idf))
    idf = np.log((1.0 + len(texts)) / (1.0 + document_frequency)) + 1.0
    return TfidfVocabulary(analyzer, ngrams, vocabulary.alphabet, vocabulary.terms, idf.astype(np.float32))


def in_text_chunks(work, texts: pa.Array, threads: int = THREADS, chunk: int = 0) -> list:
    """`work` on each chunk of `chunk` (default CHUNK_TEXTS) texts in `threads` threads, results in order."""
    chunk = chunk or CHUNK_TEXTS
    chunks = [texts.slice(i, chunk) for i in range(0, len(texts), chunk)]
    if threads < 2 or len(chunks) < 2:
        return [work(part) for part in chunks]
    with ThreadPoolExecutor(min(threads, len(chunks))) as pool:
        return list(pool.map(work, chunks))


def arrow_texts(texts: pa.Array | pa.ChunkedArray | Sequence[str | None]) -> pa.Array:
    """Texts as one Arrow large_string array (no copy when they already are one)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if not isinstance(texts, pa.Array):
        texts = pa.array(list(texts), type=pa.large_string())
    return texts.cast(pa.large_string())


def _words(texts: pa.Array, separators: str) -> tuple[np.ndarray, pa.Array]:
    """(text index, word) of every non-empty piece of the lowercased texts split on `separators`."""
    pieces = pc.split_pattern_regex(pc.utf8_lower(texts), separators)
    docs = pc.list_parent_indices(pieces).to_numpy().astype(np.int64)
    words = pc.list_flatten(pieces)
    keep = pc.greater(pc.binary_length(words), 0)
    return docs[keep.to_numpy(zero_copy_only=False)], words.filter(keep)


def _code_points(strings: pa.Array) -> np.ndarray:
    """The code points of all `strings` one after another (uint32)."""
    strings = strings.cast(pa.large_string())
    if len(strings) == 0 or strings.buffers()[2] is None:
        return np.zeros(0, dtype=np.uint32)
    offsets = np.frombuffer(strings.buffers()[1], np.int64)[strings.offset : strings.offset + len(strings) + 1]
    data = memoryview(strings.buffers()[2])[offsets[0] : offsets[-1]]
    return np.frombuffer(str(data, "utf-8").encode("utf-32-le"), dtype=np.uint32)


def _alphabet(texts: pa.Array) -> np.ndarray:
    """The code points of the lowercased texts and the padding space, at most OTHER - 1 of them (the most
    frequent): ranks 1.. are their positions in this sorted array plus one."""
    points = np.bincount(_code_points(pc.utf8_lower(texts.fill_null(""))), minlength=ord(" ") + 1)
    points[ord(" ")] += 1
    present = np.flatnonzero(points)
    if len(present) >= OTHER:
        present = np.sort(present[np.argsort(-points[present], kind="stable")[: OTHER - 1]])
    return present.astype(np.uint32)


def _char_wb_ngrams(
    texts: pa.Array, alphabet: np.ndarray, ngrams: tuple[int, int], keep_other: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(text index, packed n-gram) of scikit-learn's `char_wb` analyzer: each whitespace-separated word
    padded with one space each side gives its n-grams for n in `ngrams`; a padded word shorter than the
    smallest n gives itself once. `keep_other=False` drops n-grams holding a character outside `alphabet`."""
    word_docs, words = _words(texts, WHITESPACE)
    points = _code_points(words)
    lengths = pc.utf8_length(words).to_numpy(zero_copy_only=False).astype(np.int64)
    padded = lengths + 2
    starts = np.cumsum(padded) - padded
    ranks = np.full(int(padded.sum()), np.searchsorted(alphabet, ord(" ")) + 1, dtype=np.uint64)
    point_starts = np.cumsum(lengths) - lengths
    slot = np.searchsorted(alphabet, points)
    known = alphabet[np.minimum(slot, max(len(alphabet) - 1, 0))] == points if len(alphabet) else slot < 0
    ranks[np.arange(len(points)) + np.repeat(starts + 1 - point_starts, lengths)] = np.where(known, slot + 1, OTHER)
    docs = np.repeat(word_docs, padded)
    remaining = np.repeat(starts + padded, padded) - np.arange(len(ranks))  # characters left in the word
    out_docs, out_grams = [], []
    packed = np.zeros(len(ranks), dtype=np.uint64)
    other = np.zeros(len(ranks), dtype=bool)
    for n in range(1, ngrams[1] + 1):  # packed[p]: the n characters from p (across words; masked below)
        packed = (packed[: len(ranks) - n + 1] << np.uint64(BITS)) | ranks[n - 1 :]
        other = other[: len(packed)] | (ranks[n - 1 :] == OTHER)
        if n >= ngrams[0]:
            emit = remaining[: len(packed)] >= n
        else:  # a whole padded word of exactly n characters, shorter than the smallest n
            emit = np.zeros(len(packed), dtype=bool)
            emit[starts[padded == n]] = True
        if not keep_other:
            emit &= ~other
        out_docs.append(docs[: len(packed)][emit])
        out_grams.append(packed[emit])
    return np.concatenate(out_docs), np.concatenate(out_grams)
