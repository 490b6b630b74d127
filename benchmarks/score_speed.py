"""Speed and memory of the score command (`matching-score`) on a trained repository.

Draws `--pairs` pairs from a pairs file of the archive (by default its test.parquet, whose products
are all in the archive's product files), writes them to a scratch file, and runs the command on them
`--repeat` times as a user would (a fresh process each time: imports, model loading, reading the
products, features, scoring), printing the wall time and peak memory of each run, their median, and
the command's own split between loading the models and scoring.

    python benchmarks/score_speed.py --pairs 1000                           # this repository, its demo
    python benchmarks/score_speed.py --repo /work/full --products /work/full/data/demo --pairs 50000
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

import pandas as pd

from results import run_recorded  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PEAK = re.compile(r"peak memory (?P<gib>[\d.]+) GiB")
SPLIT = re.compile(r"models loaded in (?P<load>[\d.]+) s, scored in (?P<score>[\d.]+) s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=ROOT, help="the trained repository")
    parser.add_argument("--products", type=Path, default=None, help="archive folder (default: <repo>/data/demo)")
    parser.add_argument("--source", type=Path, default=None, help="pairs to draw from (default: test.parquet there)")
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    products = args.products or args.repo / "data" / "demo"
    source = pd.read_parquet(args.source or products / "test.parquet", columns=["variantid1", "variantid2"])
    pairs = source.sample(n=min(args.pairs, len(source)), random_state=args.seed)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1"}
    walls = []
    with tempfile.TemporaryDirectory() as scratch:
        pairs_file, out = Path(scratch) / "pairs.parquet", Path(scratch) / "scored.csv"
        pairs.to_parquet(pairs_file, index=False)
        command = [sys.executable, "-m", "matching.scoring", str(pairs_file), "--products", str(products)]
        command += ["--output", str(out), "--repo", str(args.repo)]
        for run in range(1, args.repeat + 1):
            start = time.perf_counter()
            result = subprocess.run(command, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if result.returncode != 0:
                raise SystemExit(f"the score command failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
            walls.append(wall)
            split, peak = SPLIT.search(result.stdout), PEAK.search(result.stdout)
            print(
                f"run {run}: {len(pairs)} pairs in {wall:.1f} s wall (models loaded {split['load']} s, "
                f"scored {split['score']} s), peak memory {peak['gib']} GiB",
                flush=True,
            )
        scored = pd.read_csv(out)
    print(
        f"{len(pairs)} pairs, {pairs.stack().nunique()} products, {args.repo}: median {statistics.median(walls):.1f} s "
        f"wall over {len(walls)} runs; scores {scored.target.min():.3f} .. {scored.target.max():.3f}"
    )


if __name__ == "__main__":
    run_recorded("score_speed", main)
