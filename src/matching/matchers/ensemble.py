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
) -> tuple[np.ndarray, np.ndarray]:
    x, x_test = logit(oof_scores), logit(test_scores)

    def fit_predict(train: np.ndarray, valid: np.ndarray, number: int):
        model = LogisticRegression(C=1.0).fit(x[train], target[train])
        return model.predict_proba(x[valid])[:, 1], model

    oof, _ = cross_fit(fold, fit_predict)
    return oof, LogisticRegression(C=1.0).fit(x, target).predict_proba(x_test)[:, 1]


def combine(oof: pd.DataFrame, test: pd.DataFrame, matchers: list[str], method: str) -> tuple[np.ndarray, np.ndarray]:
    if method == "rank_mean":
        return rank_mean(oof[matchers].to_numpy()), rank_mean(test[matchers].to_numpy())
    if method == "stacking":
        return stacking(oof[matchers].to_numpy(), oof.target.to_numpy(), oof.fold.to_numpy(), test[matchers].to_numpy())
    raise ValueError(f"unknown ensemble method {method!r}; use one of {', '.join(METHODS)}")
