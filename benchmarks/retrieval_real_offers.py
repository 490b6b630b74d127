"""Retrieval on real product offers: recall@k of known matches, and matches found end to end.

For each benchmark folder in `--benchmarks`: the pipeline's stages with LightGBM as
benchmarks/real_offers.py runs them (labels hidden), then the `index` stage. Only then are the
test labels read. Known matches: the positive train and test pairs; queries: the products of
positive test pairs.

- recall@k (k = 1, 5, 10, 20, 50) of the queries' known matches among their nearest other products:
  exact search for several block combinations, and the index for `retrieval.blocks`, with the
  index's recall against exact search at k = 20;
- end to end: each query's 20 candidates scored by the pair model (`CatalogMatcher.find`), a match
  where the probability reaches the out-of-fold F1 threshold: precision against the known matches
  (a lower bound: a pair nobody labelled counts as wrong) and recall of the queries' known test
  matches; beside it, the pair model on the given test pairs alone at the same threshold.

    python benchmarks/retrieval_real_offers.py [--benchmarks FOLDER]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from matching import config, metric
from matching.retrieval.candidates import catalog_rows, without_self
from matching.retrieval.exact import exact_candidates
from matching.retrieval.index import CatalogIndex
from matching.retrieval.matches import CatalogMatcher
from matching.retrieval.recall import hits, overlap_at, recall_at, true_matches
from matching.retrieval.vectors import read_catalog
from real_offers import LABELS, LAYOUT, labelless_copy, run_pipeline, working_dir
from results import run_recorded  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KS = [1, 5, 10, 20, 50]
COMBINATIONS = [
    ["names"],
    ["attributes"],
    ["descriptions"],
    ["names", "attributes"],
    ["names", "attributes", "descriptions"],
]
PAIRS = ["variantid1", "variantid2", "target"]


def exact_recall(blocks: list[str], queries: np.ndarray, known: pd.DataFrame) -> dict:
    ids, catalog = read_catalog(LAYOUT, blocks)
    return recall_at(hits(queries, exact_candidates(ids, catalog, queries, max(KS)), known), KS)


def is_known(frame: pd.DataFrame, left: str, right: str, known: pd.DataFrame) -> np.ndarray:
    keys = pd.MultiIndex.from_arrays([known.query_id, known.match_id])
    return pd.MultiIndex.from_arrays([frame[left], frame[right]]).isin(keys)


def benchmark(folder: Path, work: Path, overrides: dict) -> dict:
    from matching.stages import index as index_stage

    run_pipeline(labelless_copy(folder, work.parent), work, ["lightgbm"], overrides)
    with working_dir(work):
        index_stage.main([])
        retrieval = config.load(LAYOUT.params).retrieval
        labels = pd.read_parquet(folder / LABELS)
        known = true_matches(pd.concat([pd.read_parquet(folder / "train.parquet")[PAIRS], labels[PAIRS]]))
        test_known = true_matches(labels)
        queries = np.unique(test_known.query_id.to_numpy())
        result = {"queries": len(queries), "known_test_matches": len(test_known)}
        for blocks in COMBINATIONS:
            result[f"exact {'+'.join(blocks)}"] = exact_recall(blocks, queries, known)
        index = CatalogIndex.load(LAYOUT.retrieval_index)
        ids, vectors = read_catalog(LAYOUT, retrieval.blocks)
        rows = catalog_rows(ids, queries, "queries")
        found, scores = index.search(vectors[rows], max(KS) + 1, retrieval.probes, retrieval.rerank)
        found, _ = without_self(queries, found, scores, max(KS))
        result[f"index {'+'.join(retrieval.blocks)}"] = recall_at(hits(queries, found, known), KS)
        exact_ids = exact_candidates(ids, vectors, queries, retrieval.k)
        result["index_recall_at_20"] = overlap_at(found[:, : retrieval.k], exact_ids, retrieval.k)
        # End to end, at the out-of-fold F1 threshold (fixed before any test label was read).
        oof = pd.read_parquet(LAYOUT.oof_file("lightgbm"))
        _, threshold = metric.best_f1(oof.target.to_numpy(), oof.score.to_numpy())
        matches = CatalogMatcher.load(Path(".")).find(queries, retrieval.k)
        chosen = matches[matches.match_probability >= threshold]
        found_test = is_known(test_known, "query_id", "match_id", chosen.rename(columns={"candidate_id": "match_id"}))
        result["end_to_end"] = {
            "threshold": threshold,
            "predicted": len(chosen),
            "precision": float(is_known(chosen, "query_id", "candidate_id", known).mean()),
            "recall": float(found_test.mean()),
        }
        given = pd.read_parquet(LAYOUT.test_predictions)[["variantid1", "variantid2", "lightgbm"]]
        given = labels.merge(given, on=["variantid1", "variantid2"], how="left")
        decided = given.lightgbm.to_numpy() >= threshold
        result["given_pairs"] = {
            "precision": float(given.target[decided].mean()),
            "recall": float(decided[given.target.to_numpy() == 1].mean()),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", type=Path, default=ROOT.parent / "shared" / "benchmarks")
    parser.add_argument(
        "--set",
        nargs="*",
        default=["retrieval.blocks=[names]", "retrieval.encoding=PQ64x4fs,RFlat"],
        metavar="KEY=VALUE",
        help="params overrides (default: the index over names alone, the best vectors here; no photos)",
    )
    args = parser.parse_args()
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    for folder in sorted(p for p in args.benchmarks.iterdir() if (p / "train.parquet").exists()):
        with tempfile.TemporaryDirectory() as scratch:
            result = benchmark(folder, Path(scratch) / "work", overrides)
        print(f"\n{folder.name}: {result['queries']:,} queries, {result['known_test_matches']:,} known test matches")
        print("| search | " + " | ".join(f"recall@{k}" for k in KS) + " |")
        print("|---|" + "---|" * len(KS))
        for name, recall in result.items():
            if name.startswith(("exact", "index ")):
                print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in recall.values()) + " |")
        print(f"index recall against exact search at 20: {result['index_recall_at_20']:.4f}")
        e2e, given = result["end_to_end"], result["given_pairs"]
        print(
            f"end to end at threshold {e2e['threshold']:.3f}: {e2e['predicted']:,} matches, precision "
            f"{e2e['precision']:.4f} (lower bound), recall {e2e['recall']:.4f}; the pair model on the given test "
            f"pairs: precision {given['precision']:.4f}, recall {given['recall']:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    run_recorded("retrieval_real_offers", main)
