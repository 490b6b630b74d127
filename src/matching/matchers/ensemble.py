"""The ensemble: the matchers' out-of-fold scores combined into one score.

`rank_mean` averages each matcher's rank-normalised scores. `stacking` fits a logistic regression
on the matchers' out-of-fold scores, itself cross-fitted over the same product-disjoint folds, so
the ensemble's own out-of-fold scores never come from a model that saw their row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression

from matching.matchers.crossfit import cross_fit

METHODS = ("rank_mean", "stacking")


def rank_mean(scores: np.ndarray) -> np.ndarray:
    return np.mean([rankdata(column) / len(column) for column in scores.T], axis=0)


def logit(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, 1e-6, 1 - 1e-6)
    return np.log(clipped / (1 - clipped))


def stacking(
    oof_scores: np.ndarray, target: np.ndarray, fold: np.ndarray, test_scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Cross-fitted out-of-fold scores, test scores from a fit on every out-of-fold row, and that fit's
    weights (`stacked` applies them to new scores: they are all a saved stacker holds)."""
    x = logit(oof_scores)

    def fit_predict(train: np.ndarray, valid: np.ndarray, number: int):
        model = LogisticRegression(C=1.0).fit(x[train], target[train])
        return model.predict_proba(x[valid])[:, 1], model

    oof, _ = cross_fit(fold, fit_predict)
    final = LogisticRegression(C=1.0).fit(x, target)
    weights = {"coefficients": final.coef_[0].tolist(), "intercept": float(final.intercept_[0])}
    return oof, stacked(weights, test_scores), weights


def stacked(weights: dict, scores: np.ndarray) -> np.ndarray:
    """The stacker's probability for rows of matcher scores (columns in the stacker's matcher order)."""
    decision = logit(scores) @ np.asarray(weights["coefficients"], dtype=np.float64) + weights["intercept"]
    return 1.0 / (1.0 + np.exp(-decision))


def combine(
    oof: pd.DataFrame, test: pd.DataFrame, matchers: list[str], method: str
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Out-of-fold and test scores of the ensemble, and what a saved ensemble needs to score new rows."""
    fitted = {"method": method, "matchers": matchers}
    if method == "rank_mean":
        return rank_mean(oof[matchers].to_numpy()), rank_mean(test[matchers].to_numpy()), fitted
    if method == "stacking":
        oof_score, test_score, weights = stacking(
            oof[matchers].to_numpy(), oof.target.to_numpy(), oof.fold.to_numpy(), test[matchers].to_numpy()
        )
        return oof_score, test_score, {**fitted, **weights}
    raise ValueError(f"unknown ensemble method {method!r}; use one of {', '.join(METHODS)}")
