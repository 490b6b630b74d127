"""Stage `ensemble`: combine the matchers' out-of-fold scores, and say whether that beats the best one.

`rank_mean` averages each matcher's rank-normalised scores. `stacking` fits a logistic regression
on the matchers' out-of-fold scores, itself cross-fitted over the same product-disjoint folds, so
the ensemble's own out-of-fold scores never come from a model that saw their row.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression

from matching import metric, paths
from matching.crossfit import SCORE_KEYS, cross_fit
from matching.io import StageError, load_params, run_stage, write_json, write_parquet

METHODS = ("rank_mean", "stacking")


def gather(matchers: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Out-of-fold and test scores of every matcher side by side, one column each."""
    oof, test = None, None
    for name in matchers:
        if not paths.oof_file(name).exists():
            raise StageError(f"{paths.oof_file(name)}: missing; train.matchers lists {name}, so run its stage first")
        part, part_test = pd.read_parquet(paths.oof_file(name)), pd.read_parquet(paths.test_scores_file(name))
        if oof is None:
            oof, test = part.drop(columns="score"), part_test.drop(columns="score")
        elif not (part[SCORE_KEYS + ["fold"]].to_numpy() == oof[SCORE_KEYS + ["fold"]].to_numpy()).all():
            raise StageError(f"{paths.oof_file(name)}: rows or folds differ from {matchers[0]}'s; rerun `dvc repro`")
        oof[name], test[name] = part["score"].to_numpy(), part_test["score"].to_numpy()
    return oof, test


def rank_mean(scores: np.ndarray) -> np.ndarray:
    return np.mean([rankdata(column) / len(column) for column in scores.T], axis=0)


def logit(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, 1e-6, 1 - 1e-6)
    return np.log(clipped / (1 - clipped))


def stacking(oof_scores: np.ndarray, target: np.ndarray, fold: np.ndarray,
             test_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    raise StageError(f"params.yaml: ensemble.method is {method!r}; use one of {', '.join(METHODS)}")


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    params = load_params()
    matchers, method = list(params["train"]["matchers"]), params["ensemble"]["method"]
    oof, test = gather(matchers)
    oof_score, test_score = combine(oof, test, matchers, method)
    target, category = oof.target.to_numpy(), oof.category.to_numpy()
    singles = {name: metric.competition_metric(target, oof[name].to_numpy(), category) for name in matchers}
    best = max(singles, key=singles.get)
    ensemble_metric = metric.competition_metric(target, oof_score, category)
    write_parquet(oof.drop(columns=matchers).assign(score=oof_score), paths.oof_file(paths.ENSEMBLE_NAME))
    write_parquet(test[SCORE_KEYS].assign(score=test_score), paths.test_scores_file(paths.ENSEMBLE_NAME))
    write_json({"method": method, "matchers": matchers, "competition_metric": round(ensemble_metric, 6),
                "best_single": best, "best_single_metric": round(singles[best], 6),
                "beats_best_single": bool(ensemble_metric > singles[best])}, paths.ENSEMBLE_METRICS)
    print(f"ensemble ({method} of {', '.join(matchers)}): {ensemble_metric:.4f} against {best}'s "
          f"{singles[best]:.4f}")


if __name__ == "__main__":
    run_stage(main)
