"""Compare approximate-nearest-neighbour libraries on the pipeline's product vectors.

For each library (faiss HNSW, faiss IVF-Flat, hnswlib, usearch) in a process of its own: the time to
build the index over every product, its peak memory (the vectors included), queries a second at k
and its recall against exact search over a sample of query products. Prints a table.

    python benchmarks/ann_libraries.py --repo /path/to/repo [--blocks names,attributes,descriptions,photos]
        [--queries 2000] [--k 20] [--products N] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from matching import paths
from matching.retrieval.exact import exact_neighbours
from matching.retrieval.recall import overlap_at
from matching.retrieval.vectors import read_catalog
from results import run_recorded  # noqa: E402

LIBRARIES = ("faiss_hnsw", "faiss_ivf", "hnswlib", "usearch", "usearch_f16")
PROBES = (16, 32, 64, 128, 256)  # faiss IVF: inverted lists searched a query


def product_vectors(repo: Path, blocks: list[str], products: int | None) -> np.ndarray:
    layout = paths.Layout(repo)
    _, vectors = read_catalog(layout, blocks)
    return vectors[:products]


def build_and_search(library: str, vectors: np.ndarray, queries: np.ndarray, k: int, threads: int):
    n, dim = vectors.shape
    if library.startswith("faiss"):
        import faiss

        faiss.omp_set_num_threads(threads)
        start = time.perf_counter()
        if library == "faiss_hnsw":
            index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 64
            index.add(vectors)
            index.hnsw.efSearch = 64
        else:  # faiss_ivf or faiss:<index_factory string> with an IVF first level, e.g. faiss:IVF3000,SQ8
            lists = int(2 * np.sqrt(n))
            factory = library.split(":", 1)[1].split("@")[0] if ":" in library else f"IVF{lists},Flat"
            lists = int(factory.split(",")[0].removeprefix("IVF"))
            index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
            sample = np.random.default_rng(0).choice(n, min(n, 40 * lists), replace=False)
            index.train(vectors[np.sort(sample)])
            index.add(vectors)
        built = time.perf_counter() - start
        if library != "faiss_hnsw":  # one build, several probe counts
            space, results = faiss.ParameterSpace(), []
            for probes in PROBES:
                space.set_index_parameter(index, "nprobe", probes)
                if "RFlat" in library:
                    # faiss:...,RFlat@16: re-rank 16 x k candidates on the full vectors
                    space.set_index_parameter(index, "k_factor_rf", int(library.split("@")[1]) if "@" in library else 4)
                start = time.perf_counter()
                _, found = index.search(queries, k)
                results.append((f"nprobe {probes} of {lists}", built, time.perf_counter() - start, found))
            return results
        start = time.perf_counter()
        _, found = index.search(queries, k)
    elif library == "hnswlib":
        import hnswlib

        start = time.perf_counter()
        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(max_elements=n, M=16, ef_construction=100, random_seed=0)
        index.add_items(vectors, np.arange(n), num_threads=threads)
        index.set_ef(64)
        built = time.perf_counter() - start
        start = time.perf_counter()
        found, _ = index.knn_query(queries, k=k, num_threads=threads)
    else:
        from usearch.index import Index

        start = time.perf_counter()
        index = Index(
            ndim=dim,
            metric="ip",
            dtype="f16" if library == "usearch_f16" else "f32",
            connectivity=16,
            expansion_add=128,
            expansion_search=64,
        )
        index.add(np.arange(n), vectors, threads=threads)
        built = time.perf_counter() - start
        start = time.perf_counter()
        found = index.search(queries, k, threads=threads).keys
    return [("", built, time.perf_counter() - start, found)]


def child(args: argparse.Namespace) -> None:
    vectors = product_vectors(args.repo, args.blocks.split(","), args.products)
    rows = np.load(args.work / "query_rows.npy")
    exact = np.load(args.work / "exact.npy")
    for setting, built, searched, found in build_and_search(args.library, vectors, vectors[rows], args.k, args.threads):
        print(
            json.dumps(
                {
                    "library": args.library,
                    "setting": setting,
                    "build_s": round(built, 1),
                    "queries_per_s": round(len(rows) / searched),
                    "peak_gib": round(peak_memory_gib(), 2),
                    "recall_vs_exact": round(overlap_at(np.asarray(found, dtype=np.int64), exact, args.k), 4),
                }
            )
        )


def peak_memory_gib() -> float:
    """This process's peak resident memory since its exec (VmHWM; ru_maxrss would count the parent's
    pages at the fork)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("."))
    parser.add_argument("--blocks", default="names,attributes,descriptions,photos")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--products", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--libraries", default=";".join(LIBRARIES), help="separated by ; (faiss:<factory> too)")
    parser.add_argument("--library", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.library:
        return child(args)
    vectors = product_vectors(args.repo, args.blocks.split(","), args.products)
    rows = np.sort(np.random.default_rng(0).choice(len(vectors), args.queries, replace=False))
    start = time.perf_counter()
    exact, _ = exact_neighbours(vectors, vectors[rows], args.k)
    print(
        f"{len(vectors):,} products x {vectors.shape[1]} dims ({args.blocks}); exact search "
        f"{args.queries / (time.perf_counter() - start):.0f} queries/s on numpy",
        flush=True,
    )
    del vectors
    with tempfile.TemporaryDirectory() as work:
        np.save(Path(work) / "query_rows.npy", rows)
        np.save(Path(work) / "exact.npy", exact)
        for library in args.libraries.split(";"):
            command = [sys.executable, __file__, "--library", library, "--work", work, *sys.argv[1:]]
            result = subprocess.run(command, capture_output=True, text=True)
            print(result.stdout.strip() or f"{library}: failed: {result.stderr.strip().splitlines()[-1:]}", flush=True)


if __name__ == "__main__":
    run_recorded("ann_libraries", main)
