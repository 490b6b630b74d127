"""Retrieval on real product offers: recall@k of known matches, and catalog matching end to end.

For each benchmark folder in `--benchmarks` and each seed: the pipeline's stages with LightGBM as
benchmarks/real_offers.py runs them (test labels hidden). The blocks to search are then chosen on the
train pairs alone: recall@`retrieval.k` of the positive train pairs' matches by exact search, for each
block combination (ties: fewer blocks); the `index` and `train_candidates` stages run over them (the
candidate model's rule and threshold chosen on its calibration split of the train pairs, or out of
fold). Only then are the test labels read, once:

- recall@k (k = 1, 5, 10, 20, 50) of the test matches among each product's nearest other products,
  exact search for every block combination beside its train figure, and the index's; the index's
  recall against exact search at k = 20;
- catalog matching end to end: every product of the test pairs is a query, matched or not; each
  query's `retrieval.k` candidates are scored by the candidate model (`CatalogMatcher.find`), and the
  pairs it predicts matches are kept. Precision counts every kept pair (each unordered pair once),
  those nobody labelled as wrong, so it is a lower bound; recall is over the test pairs' matches; F1
  of the two. Beside it, the F1 the decision was chosen at (on the calibration split or out of fold),
  the candidate model's out-of-fold figures (each decision rule's, mutual best included, which find
  does not apply), and the competition's pair model
  on the given test pairs at its out-of-fold F1 threshold, with its out-of-fold F1.

`--inner-test 0.25` holds out a quarter of the train pairs as the test pairs instead (the benchmark's
test labels unread), for choosing the candidate model's settings.

    python benchmarks/retrieval_real_offers.py [--benchmarks FOLDER] [--seeds 42 1 2] [--set key=value ...]
        [--inner-test SHARE]
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from matching import config, metric
from matching.data.cleaning import unordered_key
from matching.retrieval.candidate_model import DECISION
from matching.retrieval.candidates import catalog_rows, without_self
from matching.retrieval.exact import exact_candidates
from matching.retrieval.index import CatalogIndex
from matching.retrieval.matches import CatalogMatcher
from matching.retrieval.recall import hits, overlap_at, recall_at, true_matches
from matching.retrieval.vectors import read_catalog
from real_offers import LABELS, LAYOUT, add_inner_test, inner_split_copy, labelless_copy, run_pipeline, working_dir
from results import record

ROOT = Path(__file__).resolve().parents[1]
KS = [1, 5, 10, 20, 50]
COMBINATIONS = [  # fewest blocks first: a tie goes to the simpler vectors
    ["names"],
    ["attributes"],
    ["descriptions"],
    ["names", "attributes"],
    ["names", "attributes", "descriptions"],
]
PAIRS = ["variantid1", "variantid2", "target"]


def exact_recall(blocks: list[str], queries: np.ndarray, known: pd.DataFrame) -> dict:
    """recall@k of the queries' known matches by exact search (queries the catalog lacks are left out:
    prepare drops a pair's product that has no card)."""
    ids, catalog = read_catalog(LAYOUT, blocks)
    queries = queries[np.isin(queries, ids)]
    return recall_at(hits(queries, exact_candidates(ids, catalog, queries, max(KS)), known), KS)


def queries_of(known: pd.DataFrame) -> np.ndarray:
    return np.unique(known.query_id.to_numpy())


def chosen_blocks(train_pairs: pd.DataFrame, k: int) -> tuple[list[str], dict]:
    """The block combination whose exact search finds most train matches within k (the train labels
    alone), and each combination's train recall."""
    known = true_matches(train_pairs)
    recall = {"+".join(blocks): exact_recall(blocks, queries_of(known), known) for blocks in COMBINATIONS}
    best = max(COMBINATIONS, key=lambda blocks: (recall["+".join(blocks)][f"recall_at_{k}"], -len(blocks)))
    return best, recall


def pair_f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def kept_pairs_figures(kept: pd.DataFrame, known: pd.DataFrame, test_known: pd.DataFrame) -> dict:
    """Precision of the kept (query, candidate) pairs against every known match (a lower bound: an
    unlabelled pair counts as wrong), recall of the test matches, F1; each unordered pair counted once."""
    kept_keys = pd.Index(unordered_key(kept.query_id.to_numpy(), kept.candidate_id.to_numpy())).unique()
    known_keys = pd.Index(unordered_key(known.query_id.to_numpy(), known.match_id.to_numpy())).unique()
    test_keys = pd.Index(unordered_key(test_known.query_id.to_numpy(), test_known.match_id.to_numpy())).unique()
    precision = float(kept_keys.isin(known_keys).mean()) if len(kept_keys) else 0.0
    recall = float(test_keys.isin(kept_keys).mean())
    return {"kept": len(kept_keys), "precision": precision, "recall": recall, "f1": pair_f1(precision, recall)}


def benchmark(folder: Path, work: Path, overrides: dict, inner_test: float | None = None) -> dict:
    """One run; with `inner_test`, a share of the train pairs is held out as the test pairs and the
    benchmark's test labels are never opened."""
    from matching.stages import catalog as catalog_stage
    from matching.stages import index as index_stage
    from matching.stages import train_candidates

    if inner_test is None:
        raw = labelless_copy(folder, work.parent)
    else:
        raw, held_out = inner_split_copy(folder, work.parent, inner_test, overrides["seed"])
    run_pipeline(raw, work, ["lightgbm"], overrides)
    with working_dir(work):
        retrieval = config.load(LAYOUT.params).retrieval
        train_pairs = pd.read_parquet(raw / "train.parquet")[PAIRS]
        blocks, train_recall = chosen_blocks(train_pairs, retrieval.k)
        params = yaml.safe_load(LAYOUT.params.read_text())
        params["retrieval"]["blocks"] = blocks
        LAYOUT.params.write_text(yaml.safe_dump(params, allow_unicode=True))
        index_stage.main([])
        catalog_stage.main([])
        train_candidates.main([])
        catalog_oof = json.loads(LAYOUT.catalog_metrics.read_text())
        decision = json.loads((LAYOUT.candidate_model / DECISION).read_text())
        oof = pd.read_parquet(LAYOUT.oof_file("lightgbm"))
        oof_f1, threshold = metric.best_f1(oof.target.to_numpy(), oof.score.to_numpy())
        queries = np.unique(pd.read_parquet(raw / "test.parquet")[PAIRS[:2]].to_numpy(np.int64))
        matches = CatalogMatcher.load(Path(".")).find(queries, retrieval.k)
        given = pd.read_parquet(LAYOUT.test_predictions)[["variantid1", "variantid2", "lightgbm"]]

        # Every choice is made: the test labels are read from here on.
        labels = pd.read_parquet(folder / LABELS) if inner_test is None else held_out
        known = true_matches(pd.concat([train_pairs, labels[PAIRS]]))
        test_known = true_matches(labels)
        test_queries = queries_of(test_known)
        result: dict = {
            "blocks": blocks,
            "queries": len(queries),
            "known_test_matches": len(test_known) // 2,
            "threshold": threshold,
            "oof_f1": oof_f1,
            "catalog_out_of_fold": catalog_oof,
            "decided_on": decision.get("decided_on", "out_of_fold"),
            "rules_out_of_fold": decision["out_of_fold"],
            "best_candidates_asked_share": decision["best_candidates_asked_share"],
            "exact": {
                "+".join(b): {"train": train_recall["+".join(b)], "test": exact_recall(b, test_queries, test_known)}
                for b in COMBINATIONS
            },
        }
        index = CatalogIndex.load(LAYOUT.retrieval_index)
        ids, vectors = read_catalog(LAYOUT, blocks)
        rows = catalog_rows(ids, test_queries, "queries")
        found, scores = index.search(vectors[rows], max(KS) + 1, retrieval.probes, retrieval.rerank)
        found, _ = without_self(test_queries, found, scores, max(KS))
        result["index"] = recall_at(hits(test_queries, found, test_known), KS)
        exact_ids = exact_candidates(ids, vectors, test_queries, retrieval.k)
        result["index_recall_at_20"] = overlap_at(found[:, : retrieval.k], exact_ids, retrieval.k)
        result["end_to_end"] = kept_pairs_figures(matches[matches.predicted_match], known, test_known)
        given = labels.merge(given, on=["variantid1", "variantid2"], how="left")
        decided = given.lightgbm.to_numpy() >= threshold
        precision = float(given.target[decided].mean()) if decided.any() else 0.0
        recall = float(decided[given.target.to_numpy() == 1].mean())
        result["given_pairs"] = {"precision": precision, "recall": recall, "f1": pair_f1(precision, recall)}
    return result


def mean(runs: list[dict], *path: str) -> float:
    """The mean over the runs of the figure at `path` (nested keys)."""
    return float(np.mean([functools.reduce(dict.__getitem__, path, run) for run in runs]))


def print_summary(name: str, runs: list[dict]) -> None:
    """The mean over seeds of each figure."""
    print(
        f"\n{name}: {len(runs)} seeds; {runs[0]['queries']:,} queries, {runs[0]['known_test_matches']:,} test matches"
    )
    print("| search | train recall@20 | " + " | ".join(f"test recall@{k}" for k in KS) + " |")
    print("|---|---|" + "---|" * len(KS))
    for combination in runs[0]["exact"]:
        train = mean(runs, "exact", combination, "train", "recall_at_20")
        test = [mean(runs, "exact", combination, "test", f"recall_at_{k}") for k in KS]
        print(f"| exact {combination} | {train:.3f} | " + " | ".join(f"{v:.3f}" for v in test) + " |")
    chosen = sorted({"+".join(run["blocks"]) for run in runs})
    index = [mean(runs, "index", f"recall_at_{k}") for k in KS]
    print(f"| index {', '.join(chosen)} (chosen on train) | | " + " | ".join(f"{v:.3f}" for v in index) + " |")
    print(f"index recall against exact search at 20: {mean(runs, 'index_recall_at_20'):.4f}")
    print("| decision rule, out of fold | precision | recall | F1 |\n|---|---|---|---|")
    for rule in runs[0]["rules_out_of_fold"]:
        figures = " | ".join(f"{mean(runs, 'rules_out_of_fold', rule, f):.4f}" for f in ("precision", "recall", "f1"))
        print(f"| {rule} | {figures} |")
    print(f"best candidates that were queries themselves: {mean(runs, 'best_candidates_asked_share'):.3f}")
    print("| pairs | kept | precision | recall | F1 | F1 where decided |")
    print("|---|---|---|---|---|---|")
    rules = ", ".join(sorted({run["catalog_out_of_fold"]["catalog_rule"] for run in runs}))
    for label, key, oof_f1 in (
        (
            f"catalog matching, rule {rules} (precision a lower bound)",
            "end_to_end",
            ("catalog_out_of_fold", "catalog_f1"),
        ),
        ("the pair model on the given test pairs", "given_pairs", ("oof_f1",)),
    ):
        kept = f"{mean(runs, key, 'kept'):.0f}" if "kept" in runs[0][key] else ""
        figures = " | ".join(f"{mean(runs, key, f):.4f}" for f in ("precision", "recall", "f1"))
        print(f"| {label} | {kept} | {figures} | {mean(runs, *oof_f1):.4f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", type=Path, default=ROOT.parent / "shared" / "benchmarks")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 1, 2], help="one pipeline run each")
    parser.add_argument(
        "--set",
        nargs="*",
        default=["retrieval.encoding=PQ64x4fs,RFlat"],
        metavar="KEY=VALUE",
        help="params overrides (default: an encoding for the offers' narrower vectors; no photos)",
    )
    add_inner_test(parser)
    parser.add_argument("--name", default="latest", help="the record's name: results/retrieval_real_offers/NAME.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    figures: dict = {}
    for folder in sorted(p for p in args.benchmarks.iterdir() if (p / "train.parquet").exists()):
        figures[folder.name] = {}
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as scratch:
                work = Path(scratch) / "work"
                figures[folder.name][str(seed)] = benchmark(folder, work, {**overrides, "seed": seed}, args.inner_test)
        print_summary(folder.name, list(figures[folder.name].values()))
    results = {"runs": figures, "set": args.set, **({"inner_test": args.inner_test} if args.inner_test else {})}
    print(f"-> {record('retrieval_real_offers', args.name, results)}")


if __name__ == "__main__":
    main()
