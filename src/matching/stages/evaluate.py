"""Stage `evaluate`: the competition metric and its companions on out-of-fold predictions.

`metrics/evaluate.json` is the headline, the one metrics file: the submitted model (`train.submit`;
`auto` is the ensemble stage's choice), its competition metric, PR-AUC, best F1 and that F1's
threshold, and the same four for every matcher and the ensemble. `metrics/matchers.json` holds every
figure of every model; the submitted model's per-category PR-AUC and precision-recall curve are
plot data. Out-of-fold scores come from models that never saw the pair nor any of its products.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve

from matching import config, figures, metric, paths
from matching.io import run_stage, write_csv, write_json

log = logging.getLogger(__name__)

CURVE_POINTS = 500  # enough for a smooth plot, small enough to keep in git
TABLE_KEYS = ("competition_metric", "pr_auc", "average_precision", "roc_auc")
HEADLINE = ("competition_metric", "pr_auc", "best_f1", "best_f1_threshold")


def curve_points(target: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    precision, recall, _ = precision_recall_curve(target, score)
    keep = np.unique(np.linspace(0, len(precision) - 1, min(CURVE_POINTS, len(precision))).round().astype(int))
    return pd.DataFrame({"recall": recall[keep].round(5), "precision": precision[keep].round(5)})


def rounded(summary: dict) -> dict:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in summary.items()}


def evaluate(oof: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """Summary and precision-recall curve of out-of-fold scores."""
    target, score, category = oof.target.to_numpy(), oof.score.to_numpy(), oof.category.to_numpy()
    return rounded(metric.summary(target, score, category)), curve_points(target, score)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    layout = paths.project()
    train = config.load(layout.params).train
    model = config.submitted_model(train, layout.ensemble_file)
    names = [*train.matchers, paths.ENSEMBLE_NAME]
    oofs = {name: pd.read_parquet(layout.oof_file(name)) for name in names}
    summaries = {name: evaluate(oof) for name, oof in oofs.items()}
    summary, curve = summaries[model]
    target, score = oofs[model].target.to_numpy(), oofs[model].score.to_numpy()
    table = metric.per_category_pr_auc(target, score, oofs[model].category.to_numpy())
    # The headline file, the only metrics file `dvc exp show` reads: a narrow table across experiments.
    headline = {key: summary[key] for key in HEADLINE}
    matchers = {name: {key: s[key] for key in HEADLINE} for name, (s, _) in summaries.items()}
    write_json({"model": model, "submit": train.submit, **headline, "matchers": matchers}, layout.evaluate_metrics)
    write_json({name: s for name, (s, _) in summaries.items()}, layout.matchers_metrics)
    write_csv(table.round({"pr_auc": 6}), layout.per_category)
    write_csv(curve, layout.pr_curve)
    for figure, path in (
        (figures.precision_recall({name: s[1] for name, s in summaries.items()}, model), layout.pr_curve),
        (figures.confusion(target, score, summary["best_f1_threshold"]), layout.confusion_plot),
        (figures.calibration(target, score), layout.calibration_plot),
        (figures.per_category(table), layout.per_category),
    ):
        figures.save_figure(figure, path.with_suffix(".png"))
    log.info(
        f"evaluate {model}: competition metric {summary['competition_metric']:.4f} "
        f"(PR-AUC {summary['pr_auc']:.4f}, AP {summary['average_precision']:.4f}, "
        f"ROC-AUC {summary['roc_auc']:.4f}, positives {summary['positive_share']:.1%})"
    )
    for name, (row, _) in summaries.items():
        log.info(f"  {name:<12} " + "  ".join(f"{key} {row[key]:.4f}" for key in TABLE_KEYS))


if __name__ == "__main__":
    run_stage(main)
