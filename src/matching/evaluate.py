"""Stage `evaluate`: the competition metric and its companions on the out-of-fold predictions.

Writes the summary and the per-category table as DVC metrics, and the precision-recall curve as a
DVC plot. Out-of-fold scores come from models that never saw the pair nor any of its products.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve

from matching import metric, paths
from matching.io import load_params, run_stage, write_csv, write_json

CURVE_POINTS = 500  # enough for a smooth plot, small enough to keep in git


def curve_points(target: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    precision, recall, _ = precision_recall_curve(target, score)
    keep = np.unique(np.linspace(0, len(precision) - 1, min(CURVE_POINTS, len(precision))).round().astype(int))
    return pd.DataFrame({"recall": recall[keep].round(5), "precision": precision[keep].round(5)})


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    model = load_params()["train"]["model"]
    oof = pd.read_parquet(paths.oof_file(model))
    target, score, category = oof.target.to_numpy(), oof.score.to_numpy(), oof.category.to_numpy()
    summary = {"model": model, **{k: round(v, 6) if isinstance(v, float) else v
                                  for k, v in metric.summary(target, score, category).items()}}
    table = metric.per_category_pr_auc(target, score, category).round(6)
    write_json(summary, paths.EVALUATE_METRICS)
    write_json({row.category: {"pairs": int(row.pairs), "positives": int(row.positives), "pr_auc": float(row.pr_auc)}
                for row in table.itertuples()}, paths.PER_CATEGORY)
    write_csv(curve_points(target, score), paths.PR_CURVE)
    print(f"evaluate {model}: competition metric {summary['competition_metric']:.4f} "
          f"(PR-AUC {summary['pr_auc']:.4f}, AP {summary['average_precision']:.4f}, "
          f"ROC-AUC {summary['roc_auc']:.4f}, positives {summary['positive_share']:.1%})")


if __name__ == "__main__":
    run_stage(main)
