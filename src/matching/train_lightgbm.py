"""Stage `train@lightgbm`: gradient boosting on the pair features, on product-disjoint folds.

One model per fold with early stopping on its held-out fold; the held-out scores are the
out-of-fold predictions, and the fold models' mean scores the test pairs. Models are LightGBM
text files: loading them runs no code.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from matching import paths
from matching.crossfit import Timer, cross_fit, curve_frame, train_folds, write_scores
from matching.features import feature_columns
from matching.io import atomic_path, load_params, run_stage, write_csv

NAME = "lightgbm"
CURVE_EVERY = 10  # iterations between learning-curve points kept in git


def booster_params(settings: dict, seed: int) -> dict:
    return {
        "objective": "binary",
        "metric": ["average_precision", "binary_logloss"],
        "first_metric_only": True,
        "num_leaves": int(settings["num_leaves"]),
        "learning_rate": float(settings["learning_rate"]),
        "min_data_in_leaf": int(settings["min_data_in_leaf"]),
        "feature_fraction": float(settings["feature_fraction"]),
        "bagging_fraction": float(settings["bagging_fraction"]),
        "bagging_freq": int(settings["bagging_freq"]),
        "lambda_l2": float(settings["lambda_l2"]),
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


def fit_booster(x: pd.DataFrame, y: np.ndarray, settings: dict, seed: int, curves: list):
    """A `fit_predict` for `cross_fit`: early stopping on the held-out fold; validation average
    precision by iteration goes to `curves` (LightGBM's PR-AUC is average precision)."""
    params = booster_params(settings, seed)

    def fit_predict(train: np.ndarray, valid: np.ndarray, fold: int) -> tuple[np.ndarray, lgb.Booster]:
        train_set = lgb.Dataset(x.iloc[train], y[train])
        valid_set = lgb.Dataset(x.iloc[valid], y[valid], reference=train_set)
        history: dict = {}
        booster = lgb.train(params, train_set, num_boost_round=int(settings["num_boost_round"]),
                            valid_sets=[valid_set], valid_names=["valid"],
                            callbacks=[lgb.early_stopping(int(settings["early_stopping_rounds"]), verbose=False),
                                       lgb.record_evaluation(history)])
        curves.append([{"epoch": i + 1, "train_loss": None, "valid_pr_auc": round(ap, 6)}
                       for i, ap in enumerate(history["valid"]["average_precision"]) if i % CURVE_EVERY == 0])
        return booster.predict(x.iloc[valid], num_iteration=booster.best_iteration), booster

    return fit_predict


def save_models(boosters: list[lgb.Booster], model_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    for stale in model_dir.glob("fold_*.txt"):
        stale.unlink()
    for number, booster in enumerate(boosters):
        with atomic_path(model_dir / f"fold_{number}.txt") as tmp:
            booster.save_model(str(tmp), num_iteration=booster.best_iteration)


def score(model_dir: Path, features: pd.DataFrame) -> np.ndarray:
    """Mean score of the fold models saved in `model_dir`."""
    files = sorted(model_dir.glob("fold_*.txt"))
    if not files:
        raise FileNotFoundError(f"{model_dir}: no fold_*.txt models; run `dvc repro train@lightgbm` first")
    boosters = [lgb.Booster(model_file=str(f)) for f in files]
    return np.mean([b.predict(features[b.feature_name()]) for b in boosters], axis=0)


def importance_table(boosters: list[lgb.Booster]) -> pd.DataFrame:
    gain = np.mean([b.feature_importance("gain") for b in boosters], axis=0)
    table = pd.DataFrame({"feature": boosters[0].feature_name(), "gain": gain / gain.sum()})
    return table.sort_values("gain", ascending=False).round(6)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    params = load_params()
    train, fold = train_folds(params)
    columns = feature_columns(train)
    curves: list = []
    with Timer() as timer:
        oof, boosters = cross_fit(fold, fit_booster(train[columns], train["target"].to_numpy(), params[NAME],
                                                    int(params["seed"]), curves))
    save_models(boosters, paths.model_dir(NAME))
    test = pd.read_parquet(paths.TEST_FEATURES)
    write_scores(NAME, train, fold, oof, test, score(paths.model_dir(NAME), test))
    write_csv(importance_table(boosters), paths.IMPORTANCE_PLOT)
    write_csv(curve_frame(curves), paths.learning_curve_file(NAME))
    print(f"train {NAME}: {len(boosters)} product-disjoint folds in {timer.seconds:.1f} s, "
          f"best iterations {[b.best_iteration for b in boosters]}")


if __name__ == "__main__":
    run_stage(main)
