"""The ensemble: the matchers' out-of-fold scores combined into one score.

`rank_mean` averages each matcher's rank-normalised scores; a new pair's score is ranked among the
matcher's out-of-fold scores (its saved reference), so it does not depend on the other pairs scored
with it. `stacking` fits a logistic regression on the matchers' out-of-fold scores, itself
cross-fitted over the same product-disjoint folds, so the ensemble's own out-of-fold scores never
come from a model that saw their row.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression

from matching import config
from matching.errors import ConfigError, DataError
from matching.io import write_json
from matching.matchers.crossfit import cross_fit
from matching.matchers.names import AUTO
from matching.npz import read_arrays, write_arrays

METHODS = ("rank_mean", "stacking")


def rank_mean(scores: np.ndarray) -> np.ndarray:
    return np.mean([rankdata(column) / len(column) for column in scores.T], axis=0)


def rank_mean_against(reference: list[np.ndarray], scores: np.ndarray) -> np.ndarray:
    """`rank_mean` of new rows, each matcher's score ranked among its sorted out-of-fold scores
    (`reference`): a score equal to one of them gets the rank `rank_mean` gave it (ties averaged)."""
    ranks = []
    for column, ordered in zip(scores.T, reference):
        below, not_above = np.searchsorted(ordered, column, "left"), np.searchsorted(ordered, column, "right")
        ranks.append((below + not_above + 1) / 2 / len(ordered))
    return np.mean(ranks, axis=0)


def logit(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, 1e-6, 1 - 1e-6)
    return np.log(clipped / (1 - clipped))


def stacking(oof_scores: np.ndarray, target: np.ndarray, fold: np.ndarray) -> tuple[np.ndarray, dict]:
    """Cross-fitted out-of-fold scores, and the weights of a fit on every out-of-fold row (`stacked`
    applies them to new scores: they are all a saved stacker holds)."""
    x = logit(oof_scores)

    def fit_predict(train: np.ndarray, valid: np.ndarray, number: int):
        model = LogisticRegression(C=1.0).fit(x[train], target[train])
        return model.predict_proba(x[valid])[:, 1], model

    oof, _ = cross_fit(fold, fit_predict, progress=False)  # a second each: no progress lines
    final = LogisticRegression(C=1.0).fit(x, target)
    weights = {"coefficients": final.coef_[0].tolist(), "intercept": float(final.intercept_[0])}
    return oof, weights


def stacked(weights: dict, scores: np.ndarray) -> np.ndarray:
    """The stacker's probability for rows of matcher scores (columns in the stacker's matcher order)."""
    decision = logit(scores) @ np.asarray(weights["coefficients"], dtype=np.float64) + weights["intercept"]
    return 1.0 / (1.0 + np.exp(-decision))


def combine(oof: pd.DataFrame, matchers: list[str], method: str) -> tuple[np.ndarray, dict, dict[str, np.ndarray]]:
    """Out-of-fold scores of the ensemble and what a saved ensemble needs to score new rows: its
    settings and weights (JSON), and for `rank_mean` each matcher's sorted out-of-fold scores."""
    fitted = {"method": method, "matchers": matchers}
    scores = oof[matchers].to_numpy()
    if method == "rank_mean":
        return rank_mean(scores), fitted, {name: np.sort(oof[name].to_numpy(np.float64)) for name in matchers}
    if method == "stacking":
        oof_score, weights = stacking(scores, oof.target.to_numpy(), oof.fold.to_numpy())
        return oof_score, {**fitted, **weights}, {}
    raise ValueError(f"unknown ensemble method {method!r}; use one of {', '.join(METHODS)}")


def ensemble_scores(fitted: dict, reference: dict[str, np.ndarray], scores: np.ndarray) -> np.ndarray:
    """A saved ensemble's scores of new rows (`scores`: one column per matcher, in `fitted`'s order)."""
    if fitted["method"] == "rank_mean":
        return rank_mean_against([reference[name] for name in fitted["matchers"]], scores)
    return stacked(fitted, scores)


def save_ensemble(folder: Path, fitted: dict, reference: dict[str, np.ndarray]) -> None:
    """`ensemble.json` (plain JSON: loads without running code) and, for `rank_mean`, `rank_reference.npz`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rank_reference.npz").unlink(missing_ok=True)
    write_json(fitted, folder / "ensemble.json")
    if reference:
        write_arrays(reference, folder / "rank_reference.npz")


def load_ensemble(folder: Path) -> tuple[dict, dict[str, np.ndarray]]:
    if not (folder / "ensemble.json").exists():
        raise FileNotFoundError(f"{folder}: no ensemble.json; run `dvc repro ensemble` first")
    try:
        fitted = json.loads((folder / "ensemble.json").read_text())
    except ValueError:
        raise DataError(f"{folder / 'ensemble.json'}: not readable JSON; rerun `dvc repro ensemble`") from None
    reference = read_arrays(folder / "rank_reference.npz") if fitted["method"] == "rank_mean" else {}
    return fitted, reference


def submitted_model(train: config.Train, ensemble_file: Path) -> str:
    """The model submitted: `train.submit`, with `auto` resolved by the choice the ensemble stage saved in
    `ensemble_file` (the ensemble if it beat the best single matcher out-of-fold, else that matcher)."""
    if train.submit != AUTO:
        return train.submit
    if not ensemble_file.exists():
        raise ConfigError(
            f"{ensemble_file}: missing; train.submit auto reads the ensemble stage's choice: run dvc repro"
        )
    return json.loads(ensemble_file.read_text())["auto_choice"]
