"""Ablation: the competition metric and PR-AUC of LightGBM with each feature group removed.

On the demo (the repository's `data/features`, so run `dvc repro features` first) and on each
benchmark folder of `--benchmarks` (features computed in a scratch folder; test labels are
not read). Out-of-fold on the pipeline's product-disjoint folds. Prints a table and writes
`benchmarks/results/ablation/` (`results.record`).

    python benchmarks/ablation.py [--benchmarks FOLDER] [--skip-demo]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dataclasses  # noqa: E402

from matching import config, metric, paths  # noqa: E402
from matching.features.columns import feature_columns  # noqa: E402
from matching.features.groups import FEATURE_GROUPS, NEIGHBOURS, PREFIX  # noqa: E402
from matching.matchers.crossfit import InnerSplit, cross_fit  # noqa: E402
from matching.matchers.folds import make_folds  # noqa: E402
from matching.matchers.lightgbm import binned, booster_params, fit_booster  # noqa: E402
from real_offers import ROOT, build_features, labelless_copy, write_params  # noqa: E402
from results import record  # noqa: E402

LAYOUT = paths.Layout(Path("."))


def scores_without(features: pd.DataFrame, params: dict) -> dict[str, dict]:
    """Out-of-fold quality with all groups, then with each group's columns dropped."""
    cfg = config.from_dict(params)
    left, right = features.variantid1.to_numpy(), features.variantid2.to_numpy()
    fold = make_folds(left, right, cfg.train.n_folds, cfg.seed, cfg.train.folds)
    inner = InnerSplit(left, right, cfg.train.folds, cfg.train.inner_valid_share, cfg.seed)
    target, category = features.target.to_numpy(), features.category.to_numpy()
    settings = dataclasses.replace(cfg.lightgbm, category_blend=0.0)
    booster = booster_params(settings, cfg.seed, len(features))
    table = {}
    for removed in [None, *FEATURE_GROUPS]:
        # A group goes with the neighbour ranks of its columns (nbr_text_... goes with text_).
        gone = () if removed is None else (PREFIX[removed], PREFIX[NEIGHBOURS] + PREFIX[removed])
        columns = [c for c in feature_columns(features) if not c.startswith(gone)]
        if removed is not None and len(columns) == len(feature_columns(features)):
            continue  # the group gave no columns here (e.g. no photos)
        data = binned(features[columns], target, booster)
        oof, _ = cross_fit(fold, fit_booster(features[columns], data, category, settings, booster, inner, []))
        table["all groups" if removed is None else f"without {removed}"] = {
            "competition_metric": round(metric.competition_metric(target, oof, category), 4),
            "pr_auc": round(metric.pr_auc(target, oof), 4),
            "features": len(columns),
        }
    return table


def benchmark_features(folder: Path) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "work"
        write_params(labelless_copy(folder, Path(scratch)), work, ["lightgbm"], {})
        build_features(work)
        return pd.read_parquet(work / LAYOUT.train_features)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", type=Path, default=ROOT.parent / "shared" / "benchmarks")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--name", default="latest", help="the record's name: benchmarks/results/ablation/NAME.json")
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    results = {}
    if not args.skip_demo:
        results["demo"] = scores_without(pd.read_parquet(ROOT / LAYOUT.train_features), params)
    for folder in sorted(p for p in args.benchmarks.iterdir() if (p / "train.parquet").exists()):
        # As in real_offers.py: these benchmarks split pairs at random, so fold pairs at random too.
        results[folder.name] = scores_without(
            benchmark_features(folder), {**params, "train": {**params["train"], "folds": "pairs"}}
        )
    for data, table in results.items():
        print(f"\n{data}\n{'':<22}{'metric':>8}{'PR-AUC':>8}{'features':>9}")
        for name, row in table.items():
            print(f"{name:<22}{row['competition_metric']:>8.4f}{row['pr_auc']:>8.4f}{row['features']:>9}")
    print(f"-> {record('ablation', args.name, results)}")


if __name__ == "__main__":
    main()
