"""What every matcher shares: out-of-fold fitting, the inner split it stops early on, learning curves.

A matcher supplies `fit_predict(train_rows, valid_rows, fold)`, which fits on the train rows only
and scores the held-out rows; `cross_fit` runs it once per fold, so every out-of-fold score comes
from a model that saw neither the pair nor any of its products. Early stopping reads an inner split
of the fold's train rows (`InnerSplit`), never the fold it then scores, so the out-of-fold scores,
the stacker fitted on them and the F1 threshold are not optimistic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from matching.errors import StageError
from matching.matchers.folds import pair_components

FitPredict = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, Any]]
log = logging.getLogger(__name__)


def cross_fit(fold: np.ndarray, fit_predict: FitPredict, progress: bool = True) -> tuple[np.ndarray, list[Any]]:
    """Out-of-fold scores and the model of each fold; a progress line a fold unless `progress` is off."""
    oof = np.full(len(fold), np.nan)
    models = []
    numbers = np.unique(fold)
    start = time.perf_counter()
    for number in numbers:
        valid, train = np.flatnonzero(fold == number), np.flatnonzero(fold != number)
        level = logging.INFO if progress else logging.DEBUG
        log.log(level, f"fold {number + 1}/{len(numbers)}: fitting on {len(train)} pairs, {len(valid)} held out")
        scores, model = fit_predict(train, valid, int(number))
        oof[valid] = scores
        models.append(model)
        log.log(level, f"fold {number + 1}/{len(numbers)} done, {time.perf_counter() - start:.1f} s elapsed")
    return oof, models


@dataclass(frozen=True)
class InnerSplit:
    """Splits a fold's train rows into rows to fit on and rows to stop early on (`share` of them).

    With product-disjoint folds the stopping rows share no product with the fitting rows, as the
    fold shares none with its train rows; with `pairs` folding they are random rows."""

    left: np.ndarray
    right: np.ndarray
    folding: str
    share: float
    seed: int

    def __call__(self, rows: np.ndarray, number: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, number])
        if self.folding == "pairs":
            stop = rng.random(len(rows)) < self.share
        else:
            component = pair_components(self.left[rows], self.right[rows])
            sizes = np.bincount(component)
            order = rng.permutation(len(sizes))
            chosen = order[np.cumsum(sizes[order]) <= max(self.share * len(rows), sizes[order[0]])]
            stop = np.isin(component, chosen)
        return rows[~stop], rows[stop]


def check_stopping_rows(target: np.ndarray, fold: int) -> None:
    """Early stopping reads PR-AUC on the inner split: without a positive (or a negative) pair there it
    would read a constant and stop on nothing."""
    if len(target) == 0 or target.min() == target.max():
        held = "no pair" if len(target) == 0 else f"only {'positive' if target[0] else 'negative'} pairs"
        raise StageError(
            f"fold {fold + 1}'s inner split holds {held} ({len(target)} rows), so early stopping has nothing to "
            "read; raise train.inner_valid_share or give more train pairs"
        )


def curve_frame(curves: list[list[dict]]) -> pd.DataFrame:
    """Learning curves of all folds (`epoch` restarts each fold; `step` runs on across them)."""
    rows = [dict(row, fold=fold) for fold, curve in enumerate(curves) for row in curve]
    frame = pd.DataFrame(rows, columns=["fold", "epoch", "train_loss", "valid_loss", "valid_pr_auc"])
    return frame.assign(step=np.arange(1, len(frame) + 1))


class Timer:
    """Wall time of a block, for the stage's closing line."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
