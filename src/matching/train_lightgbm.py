"""Stage `train_lightgbm`: gradient boosting on the pair features, on product-disjoint folds.

One model per fold with early stopping on its held-out fold; the held-out scores are the
out-of-fold predictions that `evaluate` scores, and the fold models' mean scores the test pairs.
Models are LightGBM text files: loading them runs no code.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from matching import paths
from matching.features import feature_columns
from matching.folds import product_disjoint_folds
from matching.io import atomic_path, load_params, run_stage, write_csv, write_json, write_parquet

MODEL = "lightgbm"


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


def train_folds(features: pd.DataFrame, fold: np.ndarray, settings: dict,
                seed: int) -> tuple[list[lgb.Booster], np.ndarray]:
    """Fold models and out-of-fold scores."""
    columns = feature_columns(features)
    x, y = features[columns], features["target"].to_numpy()
    params = booster_params(settings, seed)
    oof = np.full(len(features), np.nan)
    boosters = []
    for number in np.unique(fold):
        valid = fold == number
        train_set = lgb.Dataset(x[~valid], y[~valid], free_raw_data=True)
        valid_set = lgb.Dataset(x[valid], y[valid], reference=train_set)
        booster = lgb.train(params, train_set, num_boost_round=int(settings["num_boost_round"]),
                            valid_sets=[valid_set],
                            callbacks=[lgb.early_stopping(int(settings["early_stopping_rounds"]), verbose=False)])
        oof[valid] = booster.predict(x[valid], num_iteration=booster.best_iteration)
        boosters.append(booster)
    return boosters, oof


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
        raise FileNotFoundError(f"{model_dir}: no fold_*.txt models; run `dvc repro train_lightgbm` first")
    boosters = [lgb.Booster(model_file=str(f)) for f in files]
    return np.mean([b.predict(features[b.feature_name()]) for b in boosters], axis=0)


def importance_table(boosters: list[lgb.Booster]) -> pd.DataFrame:
    gain = np.mean([b.feature_importance("gain") for b in boosters], axis=0)
    table = pd.DataFrame({"feature": boosters[0].feature_name(), "gain": gain / gain.sum()})
    return table.sort_values("gain", ascending=False).round(6)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    params = load_params()
    seed, n_folds = int(params["seed"]), int(params["train"]["n_folds"])
    features = pd.read_parquet(paths.TRAIN_FEATURES)
    fold = product_disjoint_folds(features.variantid1.to_numpy(), features.variantid2.to_numpy(), n_folds, seed)
    boosters, oof = train_folds(features, fold, params[MODEL], seed)

    save_models(boosters, paths.model_dir(MODEL))
    predictions = features[["variantid1", "variantid2", "target", "category"]].assign(fold=fold, score=oof)
    write_parquet(predictions, paths.oof_file(MODEL))
    write_csv(importance_table(boosters), paths.IMPORTANCE_PLOT)
    write_json({"model": MODEL, "folds": n_folds, "features": len(feature_columns(features)),
                "best_iterations": [int(b.best_iteration) for b in boosters]}, paths.TRAIN_METRICS)
    print(f"train {MODEL}: {n_folds} product-disjoint folds, best iterations "
          f"{[b.best_iteration for b in boosters]}")


if __name__ == "__main__":
    run_stage(main)
