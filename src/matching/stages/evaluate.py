"""Stage `evaluate`: the competition metric and its companions on out-of-fold predictions.

Written through dvclive into `metrics/evaluate/`: `metrics.json` is the headline, the one metrics file:
the submitted model (`train.submit`; `auto` is the ensemble stage's choice), its competition metric,
PR-AUC, best F1 and that F1's threshold, and the same four for every matcher and the ensemble. The
submitted model's precision-recall and calibration curves are dvclive's sklearn plots, its per-category
PR-AUC a dvclive custom plot; `plots/images/` holds every figure, each an image that renders offline
(precision-recall of every model, confusion at the F1 threshold, calibration, per category, each
matcher's learning curves and feature importance, the products' missing fields). `metrics/matchers.json`
holds every figure of every model. Out-of-fold scores come from models that never saw the pair nor any
of its products.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve

from matching import config, figures, metric, paths
from matching.io import write_json
from matching.live import stage_live
from matching.matchers.ensemble import submitted_model
from matching.matchers.names import ENSEMBLE
from matching.stage import run_stage

log = logging.getLogger(__name__)

CURVE_POINTS = 500  # enough for a smooth plot, small enough to keep in git
CALIBRATION_BINS = 10
TABLE_KEYS = ("competition_metric", "pr_auc", "average_precision", "roc_auc")
HEADLINE = ("competition_metric", "pr_auc", "best_f1", "best_f1_threshold")


def score_steps(score: np.ndarray, steps: int = CURVE_POINTS) -> np.ndarray:
    """Each score floored to the highest of `steps` score quantiles at or below it. The precision-recall
    curve of these has at most `steps` points, each exactly the full curve's point at that quantile's
    threshold (floored >= q exactly when score >= q): a light curve that is not an approximation."""
    edges = np.unique(np.quantile(score, np.linspace(0, 1, steps)))
    return edges[np.searchsorted(edges, score, side="right") - 1]


def curve_points(target: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    precision, recall, _ = precision_recall_curve(target, score_steps(score))
    return pd.DataFrame({"recall": recall, "precision": precision})


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
    model = submitted_model(train, layout.ensemble_file)
    names = [*train.matchers, ENSEMBLE]
    oofs = {name: pd.read_parquet(layout.oof_file(name)) for name in names}
    summaries = {name: evaluate(oof) for name, oof in oofs.items()}
    summary = summaries[model][0]
    target, score = oofs[model].target.to_numpy(), oofs[model].score.to_numpy()
    table = metric.per_category_pr_auc(target, score, oofs[model].category.to_numpy()).round({"pr_auc": 6})
    with stage_live(layout.evaluate_dir) as live:
        # The headline, the only metrics file `dvc exp show` reads: a narrow table across experiments.
        live.summary.update(model=model, submit=train.submit)
        for key in HEADLINE:
            live.log_metric(key, summary[key], plot=False)
        for name, (row, _) in summaries.items():
            for key in HEADLINE:
                live.log_metric(f"matchers/{name}/{key}", row[key], plot=False)
        # dvclive's sklearn PR plot keeps a point per distinct score (1.17 M at full volume): steps instead.
        live.log_sklearn_plot("precision_recall", target, score_steps(score), title=f"Precision-recall, {model}")
        live.log_sklearn_plot("calibration", target, score, title=f"Calibration, {model}", n_bins=CALIBRATION_BINS)
        live.log_plot("per_category", table, x="pr_auc", y="category", template="bar_horizontal")
    # No dvclive confusion plot: its data is a row per pair (1.17 M at full volume); the figure instead.
    for figure, name in (
        (figures.precision_recall({name: curve for name, (_, curve) in summaries.items()}, model), "precision_recall"),
        (figures.confusion(target, score, summary["best_f1_threshold"]), "confusion"),
        (figures.calibration(target, score, CALIBRATION_BINS), "calibration"),
        (figures.per_category(table), "per_category"),
    ):
        figures.save_figure(figure, layout.evaluate_image(name))
    # Every chart is an image in git, drawn here from the train stages' tables: `dvc plots show` works
    # offline and `dvc plots diff` against an earlier commit works without a remote.
    for name in train.matchers:
        if layout.curves_table(name).exists():  # a matcher without its own fit loop keeps no curves
            curves = figures.learning_curves(pd.read_csv(layout.curves_table(name)), name)
            figures.save_figure(curves, layout.evaluate_image(f"learning_{name}"))
        if layout.importance_table(name).exists():
            importance = figures.importance(pd.read_csv(layout.importance_table(name)), name)
            figures.save_figure(importance, layout.evaluate_image(f"importance_{name}"))
    missing = figures.missing_values(pd.read_csv(layout.missing_plot))
    figures.save_figure(missing, layout.evaluate_image("missing_values"))
    write_json({name: row for name, (row, _) in summaries.items()}, layout.matchers_metrics)
    log.info(
        f"evaluate {model}: competition metric {summary['competition_metric']:.4f} "
        f"(PR-AUC {summary['pr_auc']:.4f}, AP {summary['average_precision']:.4f}, "
        f"ROC-AUC {summary['roc_auc']:.4f}, positives {summary['positive_share']:.1%})"
    )
    for name, (row, _) in summaries.items():
        log.info(f"  {name:<12} " + "  ".join(f"{key} {row[key]:.4f}" for key in TABLE_KEYS))


if __name__ == "__main__":
    run_stage(main)
