"""Score the pipeline on real product offers: the benchmarks in ../shared/benchmarks/.

For each folder it runs the pipeline's stages (lexical encoder, no photos) in a scratch folder
with `data.raw_dir` pointing at the benchmark, fixes the model and the F1 threshold on the
out-of-fold predictions of the train pairs, and only then reads `test_labels.parquet` to score
the test pairs: F1 at that threshold, PR-AUC and average precision. Prints a table and writes
`metrics/real_offers.json`.

    python benchmarks/real_offers.py [--benchmarks ../shared/benchmarks] [--matchers lightgbm]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import average_precision_score, f1_score

from matching import metric, paths
from matching.data.cleaning import scores_of_rows
from matching.io import write_json

ROOT = Path(__file__).resolve().parents[1]
LAYOUT = paths.Layout(Path("."))  # relative: the scripts run stages in scratch folders
LABELS = "test_labels.parquet"


@contextlib.contextmanager
def working_dir(path: Path):
    before = Path.cwd()
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(before)


def labelless_copy(folder: Path, scratch: Path) -> Path:
    """The benchmark's files minus the labels, linked into `scratch/raw`: the stages cannot read what is not there."""
    raw = scratch / "raw"
    raw.mkdir(parents=True)
    for source in folder.glob("*.parquet"):
        if source.name != LABELS:
            (raw / source.name).symlink_to(source.resolve())
    return raw


def write_params(raw_dir: Path, work: Path, matchers: list[str], overrides: dict) -> None:
    """The repository's params with the lexical encoder, `raw_dir` as the data and `overrides` (dotted keys)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(name="benchmark", raw_dir=str(raw_dir))
    params["embed"]["attributes"]["backend"] = params["embed"]["descriptions"]["backend"] = "lexical"
    # The benchmarks split pairs at random, so their test pairs share products with train: fold the same way.
    params["train"].update(matchers=matchers, submit=matchers[0] if len(matchers) == 1 else "ensemble", folds="pairs")
    for dotted, value in overrides.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    work.mkdir(parents=True, exist_ok=True)
    (work / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))


def build_features(work: Path) -> None:
    """The stages from `prepare` to `features`, in `work`."""
    from matching.stages import embed_names, embed_photos, embed_text, features, prepare

    with working_dir(work):
        prepare.main([])
        for modality in paths.TEXT_MODALITIES:
            embed_text.main([modality])
        embed_names.main([])
        embed_photos.main([])
        features.main([])


def run_pipeline(raw_dir: Path, work: Path, matchers: list[str], overrides: dict) -> None:
    """The DAG's stages in order, in `work`, on `raw_dir`."""
    from matching.stages import ensemble, evaluate, predict

    write_params(raw_dir, work, matchers, overrides)
    build_features(work)
    with working_dir(work):
        for name in matchers:
            __import__(f"matching.stages.train_{name}", fromlist=["main"]).main([])
        ensemble.main([])
        evaluate.main([])
        predict.main([])


def test_scores(work: Path, model: str, labels: pd.DataFrame) -> dict:
    """Threshold from the out-of-fold predictions first; the test labels only score what is fixed."""
    with working_dir(work):
        oof = pd.read_parquet(LAYOUT.oof_file(model))
        _, threshold = metric.best_f1(oof.target.to_numpy(), oof.score.to_numpy())
        predictions = pd.read_parquet(LAYOUT.test_predictions)
        scores = predictions[["variantid1", "variantid2"]].assign(score=predictions[model])
        oof_summary = metric.summary(oof.target.to_numpy(), oof.score.to_numpy(), oof.category.to_numpy())
    # Test rows may repeat a pair: each row gets its pair's score, as in the submission.
    row_scores = scores_of_rows(labels, scores)
    if np.isnan(row_scores).any():
        raise SystemExit(f"{LABELS}: names pairs that test.parquet lacks")
    y, s = labels.target.to_numpy().astype(int), row_scores
    return {
        "test_f1": round(float(f1_score(y, s >= threshold)), 4),
        "threshold": round(threshold, 4),
        "test_pr_auc": round(metric.pr_auc(y, s), 4),
        "test_average_precision": round(float(average_precision_score(y, s)), 4),
        "oof_f1": round(oof_summary["best_f1"], 4),
        "oof_competition_metric": round(oof_summary["competition_metric"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", type=Path, default=ROOT.parent / "shared" / "benchmarks")
    parser.add_argument("--matchers", nargs="+", default=["lightgbm"])
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="params overrides, e.g. seed=1")
    parser.add_argument("--out", type=Path, default=ROOT / "metrics" / "real_offers.json")
    args = parser.parse_args()
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    table = {}
    for folder in sorted(p for p in args.benchmarks.iterdir() if (p / "train.parquet").exists()):
        with tempfile.TemporaryDirectory() as scratch:
            work = Path(scratch) / "work"
            run_pipeline(labelless_copy(folder, Path(scratch)), work, args.matchers, overrides)
            model = args.matchers[0] if len(args.matchers) == 1 else paths.ENSEMBLE_NAME
            table[folder.name] = {"model": model, **test_scores(work, model, pd.read_parquet(folder / LABELS))}
    print(f"{'benchmark':<16} {'model':<10} {'test F1':>8} {'thr':>6} {'PR-AUC':>7} {'AP':>7} {'OOF F1':>7}")
    for name, row in table.items():
        print(
            f"{name:<16} {row['model']:<10} {row['test_f1']:>8.4f} {row['threshold']:>6.3f} "
            f"{row['test_pr_auc']:>7.4f} {row['test_average_precision']:>7.4f} {row['oof_f1']:>7.4f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(table, args.out)


if __name__ == "__main__":
    main()
