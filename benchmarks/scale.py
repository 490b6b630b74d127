"""Wall time, peak memory and throughput of every stage, on a demo of any size, and of a no-op rerun.

Builds a scratch git + DVC copy of this pipeline, generates the demo at the asked size, runs
`dvc repro` with the lexical encoder, and prints one row per stage from the line each stage ends
with; then times `dvc repro` again with nothing to do.

    python benchmarks/scale.py --train-pairs 20000 --test-pairs 2000 [--matchers lightgbm]
    python benchmarks/scale.py --train-pairs 1168516 --test-pairs 49620     # the real volumes
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGE_LINE = re.compile(r"^stage (?P<stage>.+?): (?P<seconds>[\d.]+) s, peak memory (?P<gib>[\d.]+) GiB$", re.M)


def run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result.stdout


def scratch_repo(root: Path, train_pairs: int, test_pairs: int, matchers: list[str]) -> None:
    for name in ("dvc.yaml", "conf", "src", ".dvcignore", ".gitignore", "data/raw/README.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, root / name)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["demo"].update(n_train_pairs=train_pairs, n_test_pairs=test_pairs)
    params["train"].update(matchers=matchers, model="ensemble")
    (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False))
    run(["git", "init", "-q"], root)
    run(["dvc", "init", "-q"], root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-pairs", type=int, default=20000)
    parser.add_argument("--test-pairs", type=int, default=2000)
    parser.add_argument("--matchers", nargs="+", default=["lightgbm"])
    parser.add_argument("--keep", type=Path, help="keep the scratch repository here instead of a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch) / "repo"
        root.mkdir(parents=True, exist_ok=True)
        scratch_repo(root, args.train_pairs, args.test_pairs, args.matchers)
        start = time.perf_counter()
        output = run(["dvc", "repro"], root)
        total = time.perf_counter() - start
        start = time.perf_counter()
        run(["dvc", "repro"], root)
        noop = time.perf_counter() - start
        report = yaml.safe_load((root / "metrics" / "data_report.json").read_text())
    products, pairs = report["rows"]["products"], report["rows"]["train_pairs"] + report["rows"]["test_pairs"]
    print(f"{args.train_pairs} train pairs, {args.test_pairs} test pairs requested; {products} products and "
          f"{pairs} pairs after prepare; matchers {', '.join(args.matchers)}")
    print(f"{'stage':<28}{'wall s':>9}{'peak RSS GiB':>14}{'rows/s':>12}  rows")
    for match in STAGE_LINE.finditer(output):
        stage, seconds = match["stage"], float(match["seconds"])
        rows, unit = (pairs, "pairs") if stage.split()[0] in ("features", "ensemble", "evaluate", "predict") or \
            stage.startswith("train") else (products, "products")
        print(f"{stage:<28}{seconds:>9.1f}{float(match['gib']):>14.2f}{rows / max(seconds, 0.05):>12,.0f}  {unit}")
    print(f"{'dvc repro, whole DAG':<28}{total:>9.1f}")
    print(f"{'dvc repro, nothing to do':<28}{noop:>9.1f}")


if __name__ == "__main__":
    main()
