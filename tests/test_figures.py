"""The figures the stages save as images: what each one draws."""

import numpy as np
import pandas as pd

from matching import figures


def test_importance_draws_the_tables_features_the_largest_on_top():
    table = pd.DataFrame({"feature": [f"f{i}" for i in range(25)], "gain": np.linspace(0.04, 0.001, 25)})
    axes = figures.importance(table, "lightgbm").axes[0]
    labels = [label.get_text() for label in axes.get_yticklabels()]
    assert len(axes.patches) == 25 and labels[-1] == "f0" and labels[0] == "f24"
    assert axes.get_title().startswith("lightgbm: top 25 features")


def test_per_category_puts_the_worst_on_top_writes_each_value_and_zooms_to_the_values():
    table = pd.DataFrame({"category": ["a", "b", "c"], "pairs": [10, 2000, 30], "pr_auc": [0.999, 0.991, 0.9995]})
    axes = figures.per_category(table).axes[0]
    labels = [label.get_text() for label in axes.get_yticklabels()]
    assert labels[-1] == "b (2,000)" and labels[0] == "c (30)"  # barh draws the first row at the bottom
    assert [t.get_text() for t in axes.texts] == ["0.9995", "0.9990", "0.9910"]
    low, high = axes.get_xlim()
    assert 0.95 < low < 0.991 and high > 1  # zoomed in: bars near 1 differ visibly; room for the labels


def test_missing_values_draw_each_fields_share_most_missing_on_top():
    table = pd.DataFrame({"column": ["name", "description", "extra_photos"], "missing_share": [0.0, 0.12, 0.4]})
    axes = figures.missing_values(table).axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()][-1] == "extra_photos"
    assert [t.get_text() for t in axes.texts] == ["0.0%", "12.0%", "40.0%"]


def test_precision_recall_draws_every_model_in_its_own_style_the_submitted_one_named():
    curve = pd.DataFrame({"recall": [0.0, 0.5, 1.0], "precision": [1.0, 0.9, 0.5]})
    axes = figures.precision_recall({"lightgbm": curve, "pairwise": curve, "ensemble": curve}, "ensemble").axes[0]
    assert len({line.get_linestyle() for line in axes.lines}) == 3
    assert len({line.get_linewidth() for line in axes.lines}) == 1  # none drawn thicker over the others
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["lightgbm", "pairwise", "ensemble (submitted)"]


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
