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


def importance(table: pd.DataFrame, name: str) -> Figure:
    """The table's features by share of the gain, the largest on top."""
    rows = table.sort_values("gain").reset_index(drop=True)
    figure, axes = plt.subplots(figsize=(8, 0.25 * len(rows) + 1))
    axes.barh(rows["feature"], rows["gain"])
    axes.set(title=f"{name}: top {len(rows)} features, share of the gain", xlabel="share of the gain")
    axes.tick_params(axis="y", labelsize=8)
    return figure


def precision_recall(curves: dict[str, pd.DataFrame], submitted: str) -> Figure:
    """Out-of-fold precision-recall curves of every model, each in its own line style so that close
    curves stay visible; the submitted one named in the legend."""
    figure, axes = plt.subplots(figsize=(6, 5))
    styles = ["-", "--", "-.", ":"]
    for number, (name, points) in enumerate(curves.items()):
        label = f"{name} (submitted)" if name == submitted else name
        axes.plot(points["recall"], points["precision"], label=label, linewidth=1.4, linestyle=styles[number % 4])
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
    """PR-AUC of each level-2 category with its number of pairs, the worst on top, each bar's value
    written beside it, and the axis zoomed to the values' range: categories all near 1 stay apart."""
    rows = table.sort_values("pr_auc", ascending=False)
    figure, axes = plt.subplots(figsize=(8, 0.28 * len(rows) + 1))
    bars = axes.barh([f"{c} ({p:,})" for c, p in zip(rows["category"], rows["pairs"])], rows["pr_auc"])
    axes.bar_label(bars, labels=[f"{v:.4f}" for v in rows["pr_auc"]], fontsize=7, padding=2)
    low = float(rows["pr_auc"].min()) if len(rows) else 0.0
    start = max(0.0, low - max(0.02, (1 - low) * 0.5))  # room below the worst bar, so its length reads
    axes.set(title="PR-AUC per level-2 category (pairs), out-of-fold, worst first", xlabel="PR-AUC")
    axes.set_xlim(start, 1 + (1 - start) * 0.12)  # past 1: room for the value labels
    axes.tick_params(axis="y", labelsize=8)
    return figure


def missing_values(table: pd.DataFrame) -> Figure:
    """The share of products missing each field, the most missing on top, values beside the bars."""
    rows = table.sort_values("missing_share")
    figure, axes = plt.subplots(figsize=(7, 0.3 * len(rows) + 1))
    bars = axes.barh(rows["column"], rows["missing_share"])
    axes.bar_label(bars, labels=[f"{v:.1%}" for v in rows["missing_share"]], fontsize=7, padding=2)
    axes.set(title="Products missing each field", xlabel="share of products", xlim=(0, 1.12))
    axes.tick_params(axis="y", labelsize=8)
    return figure
