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

QUERY_CHUNK = 2048
POINTS_PER_LIST = 40  # k-means training points a list: faiss's minimum for stable cells is 39


def list_count(products: int, lists: int | None) -> int:
    """Inverted lists: `lists`, or 2 x sqrt(products) by default; never fewer training points than a list needs."""
    wanted = lists if lists is not None else int(2 * np.sqrt(products))
    return int(np.clip(wanted, 1, max(products // POINTS_PER_LIST, 1)))


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
        # Adding assigns each product to its list by a BLAS product whose low bits follow the thread count:
        # at full volume a product or two changed list between 1 and 2 threads. One thread adds, so the
        # index is the same bytes on any machine (training and searching are, on any count).
        faiss.omp_set_num_threads(1)
        index.add(vectors)
        faiss.omp_set_num_threads(THREADS)
        return cls(index, ids, {**settings, "factory": factory, "products": len(ids), "dims": int(vectors.shape[1])})

    def search(self, queries: np.ndarray, k: int, probes: int, rerank: int) -> tuple[np.ndarray, np.ndarray]:
        """The k catalog products nearest each query, nearest first, and their inner products (-1 and
        NaN where fewer than k were found). An index that re-ranks takes rerank x k candidates to it."""
        faiss.omp_set_num_threads(THREADS)
        space = faiss.ParameterSpace()
        space.set_index_parameter(self.index, "nprobe", probes)
        if isinstance(self.index, faiss.IndexRefine):
            space.set_index_parameter(self.index, "k_factor_rf", rerank)
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
