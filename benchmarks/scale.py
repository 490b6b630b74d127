"""Wall time, peak memory and throughput of every stage, on a demo of any size, and of a no-op rerun.

Builds a scratch git + DVC copy of this pipeline, generates the demo at the real volumes of
conf/demo/full.yaml (or a fraction of them; with its volume=full settings), runs `dvc repro` (the
lexical encoder unless `--set` chooses another), and prints
one row per stage from the line each stage ends with; then times `dvc repro` again with nothing
to do.

    python benchmarks/scale.py                        # 2,252,569 products, 1,218,136 pairs
    python benchmarks/scale.py --fraction 0.1 --matchers lightgbm siamese pairwise
    python benchmarks/scale.py --matchers lightgbm siamese pairwise --set encoder=static --seed-shapes
        # the real configuration's DAG with the seed's models distilled (random weights of their shapes)

`--seed-shapes` builds random-weight models of the seed's shapes and vocabularies (they run at the real
models' speed; the hub is out of reach) and points embed.*.model at them.
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

# The environment as the user gave it: importing `matching` sets thread variables in this process
# (MATCHING_THREADS, OMP_WAIT_POLICY), and the stages must set their own, as in a user's `dvc repro`.
USER_ENV = dict(os.environ)
from matching import compose_params  # noqa: E402
from results import STAGE_LINE, run_recorded  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], cwd: Path, log: Path | None = None) -> str:
    """Run a command in the scratch repo; its output is appended to `log` as it comes."""
    env = {
        **USER_ENV,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "HF_HUB_OFFLINE": "1",
        # The scratch copy's own source, not the editable install's: editing src/ while a long
        # benchmark runs must not change what it measures.
        "PYTHONPATH": str(cwd / "src"),
    }
    with open(log or os.devnull, "a") as sink:
        result = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sink.write(result.stdout)
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(args)} failed (fix, then rerun with the same --keep to go on):\n{result.stdout[-4000:]}"
        )
    return result.stdout


def scratch_repo(root: Path, fraction: float | None, matchers: list[str], overrides: list[str]) -> None:
    """A git + DVC copy of the pipeline in `root`: the demo at `fraction` of the real volumes (None: the
    default demo of params.yaml), the given matchers, more Hydra `overrides` (e.g. encoder=static)."""
    for name in ("dvc.yaml", "conf", "src", ".dvcignore", ".gitignore", "data/raw/README.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, root / name)
    params = compose_params.composed(overrides, ROOT / "conf")
    if fraction is not None:
        # What `dvc exp run -S demo=full` composes (volume=full comes with it), at `fraction` of its sizes.
        params = compose_params.composed(["demo=full", *overrides], ROOT / "conf")
        sizes = ("n_train_pairs", "n_test_pairs", "n_products")
        params["demo"].update({key: int(params["demo"][key] * fraction) for key in sizes})
    params["train"].update(matchers=matchers, submit="ensemble")
    (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False))
    run(["git", "init", "-q"], root)
    run(["dvc", "init", "-q"], root)
    # Outputs hard-linked into DVC's cache: at full size (about 20 GB of outputs) a copy would need
    # the disk twice and minutes of copying that a user's `dvc repro` would pay only once.
    run(["dvc", "config", "cache.type", "hardlink,copy"], root)


def seed_shaped_models(folder: Path) -> list[str]:
    """Random-weight models of the seed's text encoders' shapes and full vocabularies in `folder` (their
    tokenizers learnt on a small demo's texts), as the overrides that select them."""
    from encoder_rates import MODALITIES, generated_texts
    from encoder_speed import build_model

    missing = [modality for modality in MODALITIES if not (folder / modality / "st").exists()]  # kept ones reused
    if missing:
        texts = generated_texts(50_000, len(os.sched_getaffinity(0)))
        for modality in missing:
            build_model(folder / modality, MODALITIES[modality][0], texts[modality][:100_000], full_vocabulary=True)
    return [f"embed.{modality}.model={folder / modality / 'st'}" for modality in MODALITIES]


def sweep_point(root: Path, setting: str) -> str:
    """Wall time of `dvc exp run -S setting` on the finished pipeline (what it reruns, and each stage's line)."""
    run(["git", "config", "user.name", "benchmark"], root)  # dvc exp run commits the experiment
    run(["git", "config", "user.email", "benchmark@localhost"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "pipeline run by benchmarks/scale.py", "--allow-empty"], root)
    start = time.perf_counter()
    output = run(["dvc", "exp", "run", "-S", setting], root)
    seconds = time.perf_counter() - start
    lines = "".join(f"  {m[0]}\n" for m in STAGE_LINE.finditer(output))
    return f"{'dvc exp run -S ' + setting:<28}{seconds:>9.1f}\n{lines}"


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=1.0, help="of the real volumes (1.0: all of them)")
    parser.add_argument("--matchers", nargs="+", default=["lightgbm"], help="train stages to run")
    parser.add_argument("--keep", type=Path, help="keep the scratch repository here instead of a temporary folder")
    parser.add_argument("--until", nargs="+", default=[], help="run only these stages and what they need")
    parser.add_argument(
        "--set", nargs="+", default=[], metavar="KEY=VALUE", help="Hydra overrides, e.g. encoder=static"
    )
    parser.add_argument(
        "--seed-shapes",
        action="store_true",
        help="embed.*.model: random-weight models of the seed's shapes (with --set encoder=static or transformer)",
    )
    parser.add_argument(
        "--sweep",
        metavar="KEY=VALUE",
        help="then time one sweep point: `dvc exp run -S KEY=VALUE` (e.g. lightgbm.num_leaves=63)",
    )
    args = parser.parse_args()
    sweep = ""
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch) / "repo"
        log = root / "repro.log"
        models = seed_shaped_models(root.with_name(f"{root.name}-seed-shapes")) if args.seed_shapes else []
        if not (root / ".dvc").exists():  # a kept repo goes on where its last run stopped
            root.mkdir(parents=True, exist_ok=True)
            scratch_repo(root, args.fraction, args.matchers, [*args.set, *models])
        start = time.perf_counter()
        try:
            run(["dvc", "repro", *args.until], root, log)
        finally:
            with open(log, "a") as sink:
                sink.write(f"dvc repro took {time.perf_counter() - start:.1f} s\n")
        start = time.perf_counter()
        run(["dvc", "repro", *args.until], root)
        noop = time.perf_counter() - start
        if args.sweep:
            sweep = sweep_point(root, args.sweep)
        output = log.read_text()
        report = yaml.safe_load((root / "metrics" / "data_report.json").read_text())
    products, pairs = report["rows"]["products"], report["rows"]["train_pairs"] + report["rows"]["test_pairs"]
    settings = ", ".join([*args.set, *(["embed.*.model: random weights of the seed's shapes"] if models else [])])
    print(
        f"{args.fraction:g} of the real volumes: {report['raw_rows']['products']} products in the files; "
        f"{products} products and {pairs} pairs after prepare; matchers {', '.join(args.matchers)}"
        + (f"; {settings}" if settings else "")
    )
    print(f"{'stage':<28}{'wall s':>9}{'peak RSS GiB':>14}{'rows/s':>12}  rows")
    stages = {match["stage"]: match for match in STAGE_LINE.finditer(output)}  # a resumed run: the last of each
    figures: dict = {"fraction": args.fraction, "products": products, "pairs": pairs, "matchers": args.matchers}
    figures.update(settings=settings, stages={})
    for stage, match in stages.items():
        seconds = float(match["seconds"])
        rows, unit = (
            (pairs, "pairs")
            if stage.split()[0] in ("features", "ensemble", "evaluate", "predict") or stage.startswith("train")
            else (products, "products")
        )
        print(f"{stage:<28}{seconds:>9.1f}{float(match['gib']):>14.2f}{rows / max(seconds, 0.05):>12,.0f}  {unit}")
        figures["stages"][stage] = {"seconds": seconds, "peak_gib": float(match["gib"])}
    runs = [float(x) for x in re.findall(r"^dvc repro took ([\d.]+) s$", output, re.M)]
    print(f"{'dvc repro, whole DAG':<28}{sum(runs):>9.1f}" + (f"  (in {len(runs)} runs)" if len(runs) > 1 else ""))
    print(f"{'dvc repro, nothing to do':<28}{noop:>9.1f}")
    print(sweep, end="")
    # A resumed run's seconds include the stages it reran; the table shows only a run in one go.
    return {**figures, "repro_seconds": runs, "noop_seconds": noop}


if __name__ == "__main__":
    run_recorded("scale", main)
