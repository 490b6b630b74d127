"""Figures read at a glance, saved as PNG images: `dvc plots show` puts image plots in its page as
they are, so they show without a network (its interactive charts load vega from a CDN and stay blank
offline). Pure functions from frames to figures, and one writer."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: figures are only written
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402

from matching.io import atomic_path  # noqa: E402

TOP_FEATURES = 25


def save_figure(figure: Figure, path: Path) -> None:
    """PNG without the software stamp, so equal figures give equal bytes."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)


def learning_curves(curve: pd.DataFrame, title: str) -> Figure:
    """One line per fold against the fold's own epochs (or iterations): the loss on the left (the fit's
    train loss, or LightGBM's log loss on the inner split), the inner split's PR-AUC on the right."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    loss = "train_loss" if curve["train_loss"].notna().any() else "valid_loss"
    for fold, rows in curve.groupby("fold"):
        left.plot(rows["epoch"], rows[loss], label=f"fold {fold + 1}")
        right.plot(rows["epoch"], rows["valid_pr_auc"], label=f"fold {fold + 1}")
    unit = "iteration" if loss == "valid_loss" else "epoch"
    left.set(title=f"{title}: {'train loss' if loss == 'train_loss' else 'inner-split log loss'}", xlabel=unit)
    right.set(title=f"{title}: inner-split PR-AUC (early stopping reads it)", xlabel=unit)
    for axes in (left, right):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    return figure


def importance(table: pd.DataFrame, top: int = TOP_FEATURES) -> Figure:
    """The `top` features by share of the gain, the largest on top."""
    rows = table.nlargest(top, "gain").iloc[::-1]
    figure, axes = plt.subplots(figsize=(8, 0.25 * len(rows) + 1))
    axes.barh(rows["feature"], rows["gain"])
    axes.set(title=f"LightGBM: top {len(rows)} features, share of the gain", xlabel="share of the gain")
    axes.tick_params(axis="y", labelsize=8)
    return figure


def precision_recall(curves: dict[str, pd.DataFrame], submitted: str) -> Figure:
    """Out-of-fold precision-recall curves of every model; the submitted one drawn bold."""
    figure, axes = plt.subplots(figsize=(6, 5))
    for name, points in curves.items():
        axes.plot(points["recall"], points["precision"], label=name, linewidth=2.5 if name == submitted else 1)
    axes.set(title=f"Precision-recall, out-of-fold (submitted: {submitted})", xlabel="recall", ylabel="precision")
    axes.grid(alpha=0.3)
    axes.legend()
    return figure


def confusion(target: np.ndarray, score: np.ndarray, threshold: float) -> Figure:
    """Pair counts by truth and by the decision at `threshold` (the out-of-fold F1-best one)."""
    predicted = score >= threshold
    counts = np.array([[np.sum(~predicted & (target == t)), np.sum(predicted & (target == t))] for t in (0, 1)])
    figure, axes = plt.subplots(figsize=(4.5, 4))
    axes.imshow(counts, cmap="Blues")
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if count > counts.max() / 2 else "black"
        axes.text(column, row, f"{count:,}", ha="center", va="center", color=colour)
    axes.set(xticks=[0, 1], xticklabels=["other", "same"], yticks=[0, 1], yticklabels=["other", "same"])
    axes.set(title=f"Out-of-fold at threshold {threshold:.3f}", xlabel="predicted", ylabel="actual")
    return figure


def calibration(target: np.ndarray, score: np.ndarray, bins: int = 10) -> Figure:
    """Share of matching pairs against the mean score, in `bins` equal-width score bins (scikit-learn's
    calibration curve, the one dvclive's calibration plot holds)."""
    share, mean_score = calibration_curve(target, score, n_bins=bins)
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="calibrated")
    axes.plot(mean_score, share, marker="o", label="out-of-fold")
    axes.set(title="Calibration", xlabel="mean score in the bin", ylabel="share of matching pairs")
    axes.grid(alpha=0.3)
    axes.legend()
    return figure


def per_category(table: pd.DataFrame) -> Figure:
    """PR-AUC of each level-2 category, the best on top, with its number of pairs."""
    rows = table.sort_values("pr_auc")
    figure, axes = plt.subplots(figsize=(8, 0.28 * len(rows) + 1))
    axes.barh([f"{c} ({p:,})" for c, p in zip(rows["category"], rows["pairs"])], rows["pr_auc"])
    axes.set(title="PR-AUC per level-2 category (pairs), out-of-fold", xlabel="PR-AUC", xlim=(0, 1))
    axes.tick_params(axis="y", labelsize=8)
    return figure
