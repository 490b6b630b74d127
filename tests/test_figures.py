"""The figures the stages save as images: what each one draws."""

import numpy as np
import pandas as pd

from matching import figures


def test_importance_draws_the_top_25_features_the_largest_on_top():
    table = pd.DataFrame({"feature": [f"f{i}" for i in range(40)], "gain": np.linspace(0.001, 0.04, 40)})
    axes = figures.importance(table).axes[0]
    labels = [label.get_text() for label in axes.get_yticklabels()]
    assert len(axes.patches) == 25 and labels[-1] == "f39" and "f14" not in labels


def test_learning_curves_draw_one_line_per_fold_against_its_own_epochs():
    curve = pd.DataFrame(
        {
            "fold": [0, 0, 0, 1, 1],
            "epoch": [1, 2, 3, 1, 2],
            "train_loss": [0.5, 0.4, 0.3, 0.6, 0.5],
            "valid_loss": [None] * 5,
            "valid_pr_auc": [0.7, 0.8, 0.79, 0.6, 0.75],
        }
    )
    loss, pr_auc = figures.learning_curves(curve, "siamese").axes
    assert [list(line.get_xdata()) for line in pr_auc.lines] == [[1, 2, 3], [1, 2]]
    assert "train loss" in loss.get_title() and len(loss.lines) == 2


def test_confusion_counts_pairs_by_truth_and_decision():
    target = np.array([0, 0, 0, 1, 1, 1, 1])
    score = np.array([0.1, 0.6, 0.2, 0.9, 0.4, 0.7, 0.8])
    texts = [t.get_text() for t in figures.confusion(target, score, threshold=0.5).axes[0].texts]
    assert texts == ["2", "1", "1", "3"]  # actual other: 2 kept, 1 called same; actual same: 1 missed, 3 found


def test_calibration_points_are_each_bins_mean_score_and_share_of_matches():
    target = np.array([0, 0, 1, 1, 1])
    score = np.array([0.05, 0.15, 0.12, 0.95, 0.85])
    line = figures.calibration(target, score, bins=2).axes[0].lines[1]
    np.testing.assert_allclose(line.get_xdata(), [(0.05 + 0.15 + 0.12) / 3, 0.9])
    np.testing.assert_allclose(line.get_ydata(), [1 / 3, 1.0])
