"""Stage `evaluate`: the competition metric and its companions on out-of-fold predictions.

For the submitted model (`train.submit`; `auto` is the ensemble stage's choice) it writes the
summary, the per-category table and the precision-recall curve; for every matcher and the
ensemble, one row of the comparison table. Out-of-fold scores come from models that never saw the
pair nor any of its products.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve

from matching import config, metric, paths
from matching.io import run_stage, write_csv, write_json

CURVE_POINTS = 500  # enough for a smooth plot, small enough to keep in git
TABLE_KEYS = ("competition_metric", "pr_auc", "average_precision", "roc_auc")


def curve_points(target: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    precision, recall, _ = precision_recall_curve(target, score)
    keep = np.unique(np.linspace(0, len(precision) - 1, min(CURVE_POINTS, len(precision))).round().astype(int))
    return pd.DataFrame({"recall": recall[keep].round(5), "precision": precision[keep].round(5)})


def rounded(summary: dict) -> dict:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in summary.items()}


def evaluate(oof: pd.DataFrame) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Summary, per-category table and precision-recall curve of out-of-fold scores."""
    target, score, category = oof.target.to_numpy(), oof.score.to_numpy(), oof.category.to_numpy()
    return (
        rounded(metric.summary(target, score, category)),
        metric.per_category_pr_auc(target, score, category),
        curve_points(target, score),
    )


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    layout = paths.project()
    train = config.load(layout.params).train
    model = config.submitted_model(train, layout.ensemble_file)
    summary, table, curve = evaluate(pd.read_parquet(layout.oof_file(model)))
    write_json({"model": model, "submit": train.submit, **summary}, layout.evaluate_metrics)
    write_json(
        {
            row.category: {
                "pairs": int(row.pairs),
                "positives": int(row.positives),
                "pr_auc": round(float(row.pr_auc), 6),
            }
            for row in table.itertuples()
        },
        layout.per_category,
    )
    write_csv(curve, layout.pr_curve)
    comparison = {}
    for name in list(train.matchers) + [paths.ENSEMBLE_NAME]:
        scores = summary if name == model else evaluate(pd.read_parquet(layout.oof_file(name)))[0]
        comparison[name] = {key: scores[key] for key in TABLE_KEYS}
    write_json(comparison, layout.matchers_metrics)
    print(
        f"evaluate {model}: competition metric {summary['competition_metric']:.4f} "
        f"(PR-AUC {summary['pr_auc']:.4f}, AP {summary['average_precision']:.4f}, "
        f"ROC-AUC {summary['roc_auc']:.4f}, positives {summary['positive_share']:.1%})"
    )
    for name, row in comparison.items():
        print(f"  {name:<12} " + "  ".join(f"{key} {row[key]:.4f}" for key in TABLE_KEYS))


if __name__ == "__main__":
    run_stage(main)
