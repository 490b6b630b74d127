"""What every matcher shares: the product-disjoint folds, out-of-fold fitting, and its score files.

A matcher supplies `fit_predict(train_rows, valid_rows, fold)`, which fits on the train rows only
and scores the held-out rows; `cross_fit` runs it once per fold, so every out-of-fold score comes
from a model that saw neither the pair nor any of its products.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import pandas as pd

from matching import paths
from matching.folds import make_folds
from matching.io import write_parquet

FitPredict = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, Any]]
SCORE_KEYS = ["variantid1", "variantid2"]


def cross_fit(fold: np.ndarray, fit_predict: FitPredict) -> tuple[np.ndarray, list[Any]]:
    """Out-of-fold scores and the model of each fold."""
    oof = np.full(len(fold), np.nan)
    models = []
    for number in np.unique(fold):
        valid, train = np.flatnonzero(fold == number), np.flatnonzero(fold != number)
        scores, model = fit_predict(train, valid, int(number))
        oof[valid] = scores
        models.append(model)
    return oof, models


def train_folds(params: dict) -> tuple[pd.DataFrame, np.ndarray]:
    """Train pair features and their fold numbers (`train.folds`), the same for every matcher."""
    features = pd.read_parquet(paths.TRAIN_FEATURES)
    fold = make_folds(features.variantid1.to_numpy(), features.variantid2.to_numpy(), int(params["train"]["n_folds"]),
                      int(params["seed"]), str(params["train"]["folds"]))
    return features, fold


def write_scores(name: str, train: pd.DataFrame, fold: np.ndarray, oof: np.ndarray,
                 test: pd.DataFrame, test_scores: np.ndarray) -> None:
    oof_frame = train[SCORE_KEYS + ["target", "category"]].assign(fold=fold, score=oof)
    write_parquet(oof_frame, paths.oof_file(name))
    write_parquet(test[SCORE_KEYS].assign(score=test_scores), paths.test_scores_file(name))


def curve_frame(curves: list[list[dict]]) -> pd.DataFrame:
    """Learning curves of all folds; `step` runs on across folds so one plot shows them all."""
    rows = [dict(row, fold=fold) for fold, curve in enumerate(curves) for row in curve]
    frame = pd.DataFrame(rows, columns=["fold", "epoch", "train_loss", "valid_pr_auc"])
    return frame.assign(step=np.arange(1, len(frame) + 1))


class Timer:
    """Wall time of a block, for the stage's closing line."""

    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
