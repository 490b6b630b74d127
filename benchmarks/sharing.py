"""How much a stage slows when one single-threaded busy process shares the cores.

Builds a scratch copy of the pipeline (the default demo, or `--fraction` of the real volumes), runs
it once, then reruns each stage alone and beside `python -c "while True: pass"`, `--repeats` times
each, and prints the median wall times (from each stage's closing line) and their ratio. A fair
share of two cores costs at most 2x; threads that spin while a sibling is descheduled cost more.

    python benchmarks/sharing.py [--stages features train@lightgbm ...] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import STAGE_LINE, run_recorded  # noqa: E402
from scale import run, scratch_repo  # noqa: E402

STAGES = ["features", "train@lightgbm", "train@siamese", "train@pairwise"]


def stage_seconds(root: Path, stage: str) -> float:
    output = run(["dvc", "repro", "--force", "--single-item", stage], root)
    return float(STAGE_LINE.search(output)["seconds"])


def shared_seconds(root: Path, stage: str) -> float:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        return stage_seconds(root, stage)
    finally:
        busy.kill()
        busy.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="+", default=STAGES)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each stage alone and shared (medians)")
    parser.add_argument("--fraction", type=float, help="of the real volumes (default: the default demo)")
    parser.add_argument("--keep", type=Path, help="keep the scratch repository here (a kept one is reused)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch) / "repo"
        if not (root / ".dvc").exists():
            root.mkdir(parents=True, exist_ok=True)
            scratch_repo(root, args.fraction, ["lightgbm", "siamese", "pairwise"])
        run(["dvc", "repro"], root)
        header = f"{'stage':<18}{'alone s':>9}{'shared s':>10}{'ratio':>7}"
        print(f"{header}   (medians of {args.repeats}; runs alone | shared)")
        for stage in args.stages:
            # Alternated, so a drift in the machine's speed falls on both columns alike.
            alone, shared = [], []
            for _ in range(args.repeats):
                alone.append(stage_seconds(root, stage))
                shared.append(shared_seconds(root, stage))
            a, s = statistics.median(alone), statistics.median(shared)
            runs = f"{' '.join(f'{x:.1f}' for x in alone)} | {' '.join(f'{x:.1f}' for x in shared)}"
            print(f"{stage:<18}{a:>9.1f}{s:>10.1f}{s / a:>7.2f}   {runs}", flush=True)


if __name__ == "__main__":
    run_recorded("sharing", main)
