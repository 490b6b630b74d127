"""Stage `evaluate_retrieval`: how many known matches the index finds, and what it misses against exact search.

Queries are a sample of the products of positive train pairs (`retrieval.eval_queries`); a query's
known matches are the other products of its positive pairs. recall@k is the share of known matches
among a query's k nearest catalog products (the query itself never counts); `index_recall_at_<k>`
is the share of exact search's k nearest (`retrieval.k`) that the index returns too, on the first
EXACT_QUERIES queries. Written to `metrics/retrieval.json`, beside the evaluation's headline.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd

from matching import config, paths
from matching.data.ids import distinct_ids
from matching.io import write_json
from matching.retrieval.candidates import catalog_rows, without_self
from matching.retrieval.exact import exact_candidates
from matching.retrieval.index import CatalogIndex
from matching.retrieval.recall import hits, overlap_at, recall_at, true_matches
from matching.retrieval.vectors import read_catalog
from matching.stage import run_stage

log = logging.getLogger(__name__)

KS = (1, 5, 10, 20, 50)
EXACT_QUERIES = 1000  # exact search scans every product a query: a sample keeps the stage short


def retrieval_recall(
    index: CatalogIndex, vectors: np.ndarray, matches: pd.DataFrame, queries: np.ndarray, retrieval: config.Retrieval
) -> dict:
    """recall@k of the known matches for KS, and the index's recall at k against exact search."""
    rows = catalog_rows(index.ids, queries, "train pairs")
    start = time.perf_counter()
    found, scores = index.search(vectors[rows], max(KS) + 1, retrieval.probes, retrieval.rerank)
    log.info(
        f"{len(queries):,} queries at k={max(KS) + 1}: {len(queries) / (time.perf_counter() - start):,.0f} a second"
    )
    found, _ = without_self(queries, found, scores, max(KS))
    asked = matches[matches.query_id.isin(queries)]
    checked = slice(0, EXACT_QUERIES)
    k = retrieval.k
    exact_ids = exact_candidates(index.ids, vectors, queries[checked], k)
    return {
        **recall_at(hits(queries, found, asked), list(KS)),
        f"index_recall_at_{k}": overlap_at(found[checked, :k], exact_ids, k),
        "queries": len(queries),
        "known_matches": len(asked),
    }


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params)
    index = CatalogIndex.load(layout.retrieval_index)
    vectors = index.stored_vectors()  # the re-ranking index holds them: no second copy from the embeddings
    if vectors is None:
        _, vectors = read_catalog(layout, index.settings["blocks"])
    matches = true_matches(pd.read_parquet(layout.train_pairs))
    candidates = distinct_ids(matches.query_id.to_numpy())
    size = min(cfg.retrieval.eval_queries, len(candidates))
    queries = np.sort(np.random.default_rng(cfg.seed).choice(candidates, size, replace=False))
    figures = retrieval_recall(index, vectors, matches, queries, cfg.retrieval)
    write_json(
        {key: round(v, 6) if isinstance(v, float) else v for key, v in figures.items()}, layout.retrieval_metrics
    )
    log.info(
        "retrieval: " + ", ".join(f"{key} {value:.4f}" for key, value in figures.items() if isinstance(value, float))
    )


if __name__ == "__main__":
    run_stage(main)
