"""Which product vectors find a product's matches: recall@k of exact search per block combination.

Queries are products of positive train pairs (a sample); their known matches are the other products
of those pairs. Exact inner-product search over every product, the query itself left out, so the
figures measure the vectors, not an index. Prints a table.

    python benchmarks/retrieval_blocks.py --repo /path/to/repo [--queries 2000]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from matching import paths
from matching.encoders.modalities import PRODUCT_VECTORS
from matching.retrieval.exact import exact_candidates
from matching.retrieval.recall import hits, recall_at, true_matches
from matching.retrieval.vectors import retrieval_matrix
from results import run_recorded  # noqa: E402

KS = [1, 5, 10, 20, 50]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("."))
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    layout = paths.Layout(args.repo)
    arrays, ids = {}, None
    for block, array in PRODUCT_VECTORS.items():
        with np.load(layout.embedding_file(block)) as archive:
            arrays[block] = archive[array]
            ids = archive["variantid"] if ids is None else ids
    matches = true_matches(pd.read_parquet(layout.train_pairs))
    queries = np.unique(matches.query_id)
    queries = np.sort(np.random.default_rng(0).choice(queries, min(args.queries, len(queries)), replace=False))
    matches = matches[matches.query_id.isin(queries)]
    print(f"{len(ids):,} products, {len(queries):,} queries, {len(matches):,} known matches")
    print("| blocks | dims | " + " | ".join(f"recall@{k}" for k in KS) + " |")
    print("|---|---|" + "---|" * len(KS))
    for size in range(1, len(PRODUCT_VECTORS) + 1):
        for blocks in itertools.combinations(PRODUCT_VECTORS, size):
            catalog = retrieval_matrix([arrays[b] for b in blocks])
            neighbours = exact_candidates(ids, catalog, queries, max(KS))
            recall = recall_at(hits(queries, neighbours, matches), KS)
            print(
                f"| {'+'.join(blocks)} | {catalog.shape[1]} | "
                + " | ".join(f"{v:.3f}" for v in recall.values())
                + " |",
                flush=True,
            )


if __name__ == "__main__":
    run_recorded("retrieval_blocks", main)
