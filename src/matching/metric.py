"""The competition metric and the other scores reported beside it (see docs/data.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score


def pr_auc(target: np.ndarray, score: np.ndarray) -> float:
    """Area under the precision-recall curve as the organisers compute it; 0 with no positive pair."""
    if target.sum() == 0:
        return 0.0
    precision, recall, _ = precision_recall_curve(target, score)
    return float(auc(recall, precision))


def per_category_pr_auc(target: np.ndarray, score: np.ndarray, category: np.ndarray) -> pd.DataFrame:
    """One row per level-2 category of variantid1: pairs, positives and PR-AUC."""
    frame = pd.DataFrame({"target": target, "score": score, "category": category})
    rows = [
        {
            "category": name,
            "pairs": len(group),
            "positives": int(group.target.sum()),
            "pr_auc": pr_auc(group.target.to_numpy(), group.score.to_numpy()),
        }
        for name, group in frame.groupby("category", sort=True)
    ]
    return pd.DataFrame(rows, columns=["category", "pairs", "positives", "pr_auc"])


def competition_metric(target: np.ndarray, score: np.ndarray, category: np.ndarray) -> float:
    """Unweighted mean over level-2 categories of the per-category PR-AUC."""
    return float(per_category_pr_auc(target, score, category)["pr_auc"].mean())


def best_f1(target: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """Highest F1 over thresholds, and the threshold that gives it (predict 1 where score >= it)."""
    precision, recall, thresholds = precision_recall_curve(target, score)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)[:-1]
    best = int(np.argmax(f1))
    return float(f1[best]), float(thresholds[best])


def summary(target: np.ndarray, score: np.ndarray, category: np.ndarray) -> dict:
    f1, threshold = best_f1(target, score)
    return {
        "competition_metric": competition_metric(target, score, category),
        "pr_auc": pr_auc(target, score),
        "average_precision": float(average_precision_score(target, score)),
        "roc_auc": float(roc_auc_score(target, score)),
        "best_f1": f1,
        "best_f1_threshold": threshold,
        "positive_share": float(np.mean(target)),
        "pairs": int(len(target)),
    }
