import numpy as np
import pytest

from matching import metric


def test_pr_auc_matches_a_hand_computed_curve():
    # Curve points (recall, precision): (1, 1/2), (1, 2/3), (1/2, 1/2), (1/2, 1), (0, 1).
    # Trapezoids: 1/2 * (2/3 + 1/2) / 2 + 1/2 * (1 + 1) / 2 = 7/24 + 1/2 = 19/24.
    target = np.array([1, 0, 1, 0])
    score = np.array([0.9, 0.8, 0.7, 0.1])
    assert metric.pr_auc(target, score) == pytest.approx(19 / 24)


def test_category_without_positives_scores_zero_and_counts_in_the_mean():
    target = np.array([1, 0, 1, 0, 0, 0])
    score = np.array([0.9, 0.8, 0.7, 0.1, 0.5, 0.4])
    category = np.array(["A", "A", "A", "A", "B", "B"])
    table = metric.per_category_pr_auc(target, score, category)
    assert table.set_index("category")["pr_auc"].to_dict() == pytest.approx({"A": 19 / 24, "B": 0.0})
    assert metric.competition_metric(target, score, category) == pytest.approx(19 / 48)


def test_metric_is_unweighted_over_categories():
    # A big perfect category and a small reversed one: the mean is not pulled towards the big one.
    target = np.array([1] * 50 + [0] * 50 + [1, 0])
    score = np.concatenate([np.linspace(1, 0.6, 50), np.linspace(0.4, 0, 50), [0.1, 0.9]])
    category = np.array(["big"] * 100 + ["small"] * 2)
    small = metric.pr_auc(np.array([1, 0]), np.array([0.1, 0.9]))
    assert metric.competition_metric(target, score, category) == pytest.approx((1.0 + small) / 2)
    assert small < 1.0


def test_best_f1_threshold_reproduces_the_f1():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 2, 200)
    score = np.clip(target * 0.3 + rng.random(200) * 0.7, 0, 1)
    f1, threshold = metric.best_f1(target, score)
    predicted = score >= threshold
    tp = (predicted & (target == 1)).sum()
    assert f1 == pytest.approx(2 * tp / (predicted.sum() + target.sum()))


def test_summary_reports_average_precision_beside_the_competition_metric():
    target = np.array([1, 0, 1, 0])
    score = np.array([0.9, 0.8, 0.7, 0.1])
    summary = metric.summary(target, score, np.array(["A"] * 4))
    assert summary["competition_metric"] == pytest.approx(19 / 24)
    assert summary["average_precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert summary["positive_share"] == 0.5


def test_score_steps_give_a_light_curve_whose_points_lie_on_the_full_curve():
    from sklearn.metrics import precision_recall_curve

    from matching.stages.evaluate import score_steps

    rng = np.random.default_rng(1)
    target = rng.integers(0, 2, 5000)
    score = np.round(np.clip(0.3 * target + rng.random(5000) * 0.7, 0, 1), 4)  # ties, as real scores have
    precision, recall, thresholds = precision_recall_curve(target, score_steps(score, steps=50))
    assert len(thresholds) <= 50 and set(thresholds) <= set(score) | set(np.quantile(score, np.linspace(0, 1, 50)))
    for p, r, t in zip(precision, recall, thresholds):
        chosen = score >= t  # the full-resolution decision at this threshold
        assert p == target[chosen].mean() and r == target[chosen].sum() / target.sum()
