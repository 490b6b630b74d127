"""The approximate-nearest-neighbour index over the catalog's retrieval vectors, by inner product:
faiss's inverted lists (k-means cells; a query scans its `probes` nearest cells) holding each
product's vector in `retrieval.encoding` (faiss's index-factory words: by default 4-bit product
quantisation read by SIMD "fast scan", then the best `rerank` x k re-ranked on the full vectors).

Chosen by measurement (benchmarks/ann_libraries.py; README, "Find a product's matches"): HNSW graphs
(faiss, hnswlib, usearch) insert product by product and cost many times more to build at the
catalog's size, while inverted lists train on a sample and add every product in one pass. The build is
also deterministic (a seeded sample, seeded k-means, no insertion races), so the same vectors give
the same index bytes, as every other output of the pipeline does. Saved in faiss's own format
beside the products' ids (`ids.npy`) and what it was built from (`index.json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from matching import THREADS
from matching.errors import StageError
from matching.io import atomic_path, write_json
from matching.parallel import ordered_map

QUERY_CHUNK = 2048
POINTS_PER_LIST = 40  # k-means training points a list: faiss's minimum for stable cells is 39
# Products a thread assigns and encodes at once: faiss's own add block, a multiple of its 4,096-row BLAS
# block, so each product's list is the one faiss's add on one thread gives it.
ADD_CHUNK = 65_536


def list_count(products: int, lists: int | None) -> int:
    """Inverted lists: `lists`, or 2 x sqrt(products) by default; never fewer training points than a list needs."""
    wanted = lists if lists is not None else int(2 * np.sqrt(products))
    return int(np.clip(wanted, 1, max(products // POINTS_PER_LIST, 1)))


def add_in_chunks(index: faiss.Index, vectors: np.ndarray) -> None:
    """Add every vector to a trained index, as one faiss thread's `index.add` would, bytes and all, with
    the work on `THREADS` threads.

    faiss's own add on several threads assigns a product to its list by a BLAS product whose low bits
    follow the thread count (at full volume a product or two changed list between 1 and 2 threads).
    Here each chunk of ADD_CHUNK products is assigned and encoded on one faiss thread, the chunks side
    by side; the codes then go into their lists in product order, as faiss's add puts them."""
    ivf = faiss.extract_index_ivf(index)

    def assigned_and_encoded(start: int) -> tuple[np.ndarray, np.ndarray]:
        faiss.omp_set_num_threads(1)  # this thread's own OpenMP setting
        chunk = np.ascontiguousarray(vectors[start : start + ADD_CHUNK], dtype=np.float32)
        lists = ivf.quantizer.assign(chunk, 1).ravel()
        codes = np.empty((len(chunk), ivf.code_size), np.uint8)
        ivf.encode_vectors(len(chunk), faiss.swig_ptr(chunk), faiss.swig_ptr(lists), faiss.swig_ptr(codes))
        return lists, codes

    parts = list(ordered_map(assigned_and_encoded, range(0, len(vectors), ADD_CHUNK)))
    lists = np.concatenate([part[0] for part in parts]) if parts else np.zeros(0, np.int64)
    codes = np.concatenate([part[1] for part in parts]) if parts else np.zeros((0, ivf.code_size), np.uint8)
    order = np.argsort(lists, kind="stable")  # a list holds its products in their order
    bounds = np.searchsorted(lists[order], np.arange(ivf.nlist + 1))  # a product faiss cannot place (-1) is left out
    assert ivf.invlists is not None  # an IVF index owns its lists from the factory on
    invlists = faiss.downcast_InvertedLists(ivf.invlists)
    packer = getattr(invlists, "packer", None)  # fast-scan lists (BlockInvertedLists) hold codes packed in blocks
    sources = None if packer is None else nibble_sources(packer)
    for list_no in np.flatnonzero(np.diff(bounds)):
        rows = order[bounds[list_no] : bounds[list_no + 1]].astype(np.int64)  # held: faiss reads its memory
        list_codes = codes[rows]
        if packer is not None:
            list_codes = packed_in_blocks(list_codes, packer, sources)
        invlists.add_entries(int(list_no), len(rows), faiss.swig_ptr(rows), faiss.swig_ptr(list_codes))
    ivf.ntotal = len(vectors)
    if isinstance(index, faiss.IndexRefine):  # the full vectors the candidates are re-ranked on
        index.refine_index.add(vectors)
        index.ntotal = len(vectors)


def packed_in_blocks(codes: np.ndarray, packer: faiss.CodePacker, sources: np.ndarray | None) -> np.ndarray:
    """A list's codes in fast-scan blocks of `packer.nvec` products, the last one padded with zero codes:
    every block by one gather of half-bytes (`nibble_sources`), or block by block through faiss where
    its packing is not a shuffle of half-bytes (`sources` None)."""
    blocks = -(-len(codes) // packer.nvec)
    flat = np.zeros((blocks * packer.nvec, codes.shape[1]), np.uint8)
    flat[: len(codes)] = codes
    if sources is not None:
        return _packed_nibbles(_nibbles(flat.reshape(blocks, -1)), sources)
    packed = np.empty((blocks, packer.block_size), np.uint8)
    for block in range(blocks):
        packer.pack_all(faiss.swig_ptr(flat[block * packer.nvec :]), faiss.swig_ptr(packed[block]))
    return packed


def nibble_sources(packer: faiss.CodePacker) -> np.ndarray | None:
    """For each half-byte of a packed block, the half-byte of the block's codes that faiss's packing puts
    there (one past the last for a padding half-byte), read off faiss's own packing of probe blocks:
    probe k holds in each half-byte the k-th hex digit of that half-byte's number. None if a random
    block does not pack that way (a packer that does more than shuffle half-bytes)."""
    count = packer.nvec * packer.code_size * 2

    def packed(nibbles: np.ndarray) -> np.ndarray:
        block = (nibbles[0::2] | (nibbles[1::2] << 4)).astype(np.uint8)
        out = np.empty(packer.block_size, np.uint8)
        packer.pack_all(faiss.swig_ptr(block), faiss.swig_ptr(out))
        return _nibbles(out[None])[0, :-1].astype(np.int64)

    number = np.arange(count)
    sources = np.zeros(2 * packer.block_size, np.int64)
    for digit in range(int(np.ceil(np.log2(count) / 4))):  # count: 64 and more
        sources |= packed((number >> (4 * digit)) & 15) << (4 * digit)
    sources[packed(np.full(count, 15)) == 0] = count  # half-bytes that hold no code's
    probe = np.random.default_rng(0).integers(0, 256, (1, count // 2), dtype=np.uint8)
    expected = np.empty(packer.block_size, np.uint8)
    packer.pack_all(faiss.swig_ptr(probe), faiss.swig_ptr(expected))
    return sources if np.array_equal(_packed_nibbles(_nibbles(probe), sources)[0], expected) else None


def _nibbles(blocks: np.ndarray) -> np.ndarray:
    """Each row's bytes as half-bytes (low, high), and a zero half-byte after them for the padding."""
    halves = np.stack([blocks & 15, blocks >> 4], axis=-1).reshape(len(blocks), -1)
    return np.concatenate([halves, np.zeros((len(blocks), 1), np.uint8)], axis=1)


def _packed_nibbles(nibbles: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Rows of half-bytes gathered from `sources`, two a byte (low, high)."""
    gathered = nibbles[:, sources]
    return np.bitwise_or(gathered[:, 0::2], gathered[:, 1::2] << 4, order="C")  # faiss reads it row by row


@dataclass
class CatalogIndex:
    """An index over the catalog and the product id of each of its rows."""

    index: faiss.Index
    ids: np.ndarray
    settings: dict

    @classmethod
    def build(
        cls, ids: np.ndarray, vectors: np.ndarray, lists: int | None, encoding: str, seed: int, settings: dict
    ) -> CatalogIndex:
        faiss.omp_set_num_threads(THREADS)
        count = list_count(len(vectors), lists)
        factory = f"IVF{count},{encoding}"
        sample = np.random.default_rng(seed).choice(
            len(vectors), min(len(vectors), POINTS_PER_LIST * count), replace=False
        )
        try:
            index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
            faiss.extract_index_ivf(index).cp.seed = seed
            index.train(vectors[np.sort(sample)])
        except RuntimeError:
            raise StageError(
                f"params.yaml: retrieval.encoding is {encoding!r}, which faiss cannot build for {vectors.shape[1]} "
                "dims; use index-factory words such as Flat, SQ8 or PQ<m>x4fs,RFlat with m dividing the dims"
            ) from None
        add_in_chunks(index, vectors)
        return cls(index, ids, {**settings, "factory": factory, "products": len(ids), "dims": int(vectors.shape[1])})

    def search(self, queries: np.ndarray, k: int, probes: int, rerank: int) -> tuple[np.ndarray, np.ndarray]:
        """The k catalog products nearest each query, nearest first, and their inner products (-1 and
        NaN where fewer than k were found). An index that re-ranks takes rerank x k candidates to it."""
        faiss.omp_set_num_threads(THREADS)
        space = faiss.ParameterSpace()
        ivf = faiss.try_extract_index_ivf(self.index)  # more lists than it has would overflow inside faiss
        space.set_index_parameter(self.index, "nprobe", min(probes, ivf.nlist) if ivf is not None else probes)
        if isinstance(self.index, faiss.IndexRefine):  # more than every product is every product, not a crash
            space.set_index_parameter(self.index, "k_factor_rf", min(rerank, -(-self.index.ntotal // k)))
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        # A chunk at a time: the re-ranking keeps rerank x k candidates a query (19,000 queries at k = 51:
        # 1.5 GB at once).
        parts = [
            self.index.search(queries[start : start + QUERY_CHUNK], k) for start in range(0, len(queries), QUERY_CHUNK)
        ]
        scores = np.vstack([part[0] for part in parts]) if parts else np.empty((0, k), np.float32)
        rows = np.vstack([part[1] for part in parts]) if parts else np.empty((0, k), np.int64)
        found = rows >= 0
        return np.where(found, self.ids[np.where(found, rows, 0)], -1), np.where(found, scores, np.nan)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of catalog rows (exact with a re-ranking index, which keeps the full vectors),
        so that a catalog product is queried without reading the embedding files."""
        try:
            return self.index.reconstruct_batch(np.asarray(rows, dtype=np.int64))
        except RuntimeError:  # inverted lists alone need a row -> list map first
            faiss.extract_index_ivf(self.index).make_direct_map()
            return self.index.reconstruct_batch(np.asarray(rows, dtype=np.int64))

    def stored_vectors(self) -> np.ndarray | None:
        """Every catalog row's full vector where the index keeps them (a re-ranking index does), a view
        without a copy (2.3 GB at full volume); None where it does not."""
        if not isinstance(self.index, faiss.IndexRefine):
            return None
        flat = faiss.downcast_index(self.index.refine_index)
        if not isinstance(flat, faiss.IndexFlat):
            return None
        return faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)

    def save(self, folder: Path) -> None:
        with atomic_path(folder / "index.faiss") as tmp:
            faiss.write_index(self.index, str(tmp))
        with atomic_path(folder / "ids.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, self.ids, allow_pickle=False)
        write_json(self.settings, folder / "index.json")

    @classmethod
    def load(cls, folder: Path) -> CatalogIndex:
        files = [folder / name for name in ("index.faiss", "ids.npy", "index.json")]
        missing = [path.name for path in files if not path.exists()]
        if missing:
            raise StageError(f"{folder}: no index ({', '.join(missing)} missing); build it with `dvc repro index`")
        try:
            index = faiss.read_index(str(files[0]))
            return cls(index, np.load(files[1], allow_pickle=False), json.loads(files[2].read_text()))
        except (RuntimeError, ValueError, OSError) as error:  # faiss, numpy and json on a cut or foreign file
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise StageError(
                f"{folder}: the index does not load ({reason[:160]}); rebuild it with `dvc repro index`"
            ) from None
