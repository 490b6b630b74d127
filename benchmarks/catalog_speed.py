"""Speed and memory of finding and scoring against a trained repository's catalog, as a user runs them.

Draws `--queries` catalog products and `--pairs` pairs of catalog products (the repository's own train
and test pairs, then random pairs if they are too few), and runs `matching-find` (`--k` candidates a
query) and `matching-score` on them `--repeat` times each, in a fresh process each time (imports,
loading, finding or scoring, writing). Prints each run's split, as the commands log it, and records the
medians (`benchmarks/results/catalog_speed/<--name>.json`), which docs/performance.md shows.

    python benchmarks/catalog_speed.py                                   # this repository, its demo
    python benchmarks/catalog_speed.py --repo /path/to/full_size_repo --name cpu_full
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from results import record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PEAK = re.compile(r"peak memory (?P<gib>[\d.]+) GiB")
FIND = re.compile(r"loaded in (?P<load>[\d.]+) s, found, scored and written in (?P<after>[\d.]+) s")
SCORE = re.compile(r"models loaded in (?P<load>[\d.]+) s, scored in (?P<after>[\d.]+) s")


def timed_runs(command: list[str], pattern: re.Pattern, repeat: int, what: str) -> dict:
    """`command` run `repeat` times: the median wall, loading and after-loading seconds, the largest peak."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1"}
    runs = []
    for run in range(1, repeat + 1):
        start = time.perf_counter()
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"{what} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        split, peak = pattern.search(result.stdout + result.stderr), PEAK.search(result.stdout)
        runs.append({"wall_s": wall, "load_s": float(split["load"]), "after_load_s": float(split["after"])})
        runs[-1]["peak_gib"] = float(peak["gib"])
        print(
            f"{what} run {run}: {wall:.1f} s wall, loaded in {split['load']} s, "
            f"{split['after']} s after loading, peak {peak['gib']} GiB",
            flush=True,
        )
    medians = {key: round(statistics.median(r[key] for r in runs), 2) for key in ("wall_s", "load_s", "after_load_s")}
    return {**medians, "peak_gib": max(r["peak_gib"] for r in runs), "runs": len(runs)}


def drawn_pairs(repo: Path, catalog: np.ndarray, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """`n` pairs of catalog products: the repository's own pairs first, random pairs if they run out."""
    prepared = repo / "data" / "prepared"
    keys = ["variantid1", "variantid2"]
    own = pd.concat([pd.read_parquet(prepared / f"{part}_pairs.parquet", columns=keys) for part in ("train", "test")])
    pairs = own.sample(n=min(n, len(own)), random_state=int(rng.integers(1 << 31)))
    extra = n - len(pairs)
    random = pd.DataFrame(dict(zip(keys, rng.choice(catalog, (2, extra)))))
    return pd.concat([pairs, random], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=ROOT, help="the trained repository")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="latest", help="the record's name under benchmarks/results/catalog_speed")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    catalog = pd.read_parquet(args.repo / "data" / "prepared" / "products.parquet", columns=["variantid"])
    catalog_ids = catalog.variantid.to_numpy(np.int64)
    repo = ["--repo", str(args.repo)]
    with tempfile.TemporaryDirectory() as scratch:
        queries_file, pairs_file = Path(scratch) / "queries.parquet", Path(scratch) / "pairs.parquet"
        queries = rng.choice(catalog_ids, min(args.queries, len(catalog_ids)), replace=False)
        pd.DataFrame({"variantid": queries}).to_parquet(queries_file, index=False)
        pairs = drawn_pairs(args.repo, catalog_ids, args.pairs, rng)
        pairs.to_parquet(pairs_file, index=False)
        find = [sys.executable, "-m", "matching.retrieval", str(queries_file), "--k", str(args.k)]
        find += ["--output", str(Path(scratch) / "found.parquet"), *repo]
        score = [sys.executable, "-m", "matching.scoring", str(pairs_file)]
        score += ["--output", str(Path(scratch) / "scored.parquet"), *repo]
        results = {
            "products": len(catalog_ids),
            "find": {"queries": len(queries), "k": args.k, **timed_runs(find, FIND, args.repeat, "find")},
            "score": {"pairs": len(pairs), **timed_runs(score, SCORE, args.repeat, "score")},
        }
    print(results)
    print(f"-> {record('catalog_speed', args.name, results)}")


if __name__ == "__main__":
    main()
