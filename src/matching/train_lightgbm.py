"""Stage `train@lightgbm`: gradient boosting on the pair features, on product-disjoint folds.

One model per fold with early stopping on its held-out fold; the held-out scores are the
out-of-fold predictions. The test pairs are scored by one model refitted on all train pairs
(`refit_full`) or by the fold models' mean. Models are LightGBM text files: loading them runs no code.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from matching import paths
from matching.crossfit import Timer, cross_fit, curve_frame, train_folds, write_scores
from matching.features import feature_columns
from matching.io import atomic_path, load_params, run_stage, write_csv, write_json

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


@dataclass
class FoldModel:
    """A fold's global booster and, when `category_blend` > 0, one booster per large level-2 category."""

    booster: lgb.Booster
    by_category: dict[str, lgb.Booster] = field(default_factory=dict)

    def predict(self, x: pd.DataFrame, category: np.ndarray, blend: float) -> np.ndarray:
        scores = self.booster.predict(x[self.booster.feature_name()], num_iteration=self.booster.best_iteration)
        for name, booster in self.by_category.items():
            rows = category == name
            if rows.any():
                scores[rows] = (1 - blend) * scores[rows] + blend * booster.predict(x[booster.feature_name()][rows])
        return scores


def fit_booster(x: pd.DataFrame, y: np.ndarray, category: np.ndarray, settings: dict, seed: int, curves: list):
    """A `fit_predict` for `cross_fit`: early stopping on the held-out fold; validation average
    precision by iteration goes to `curves` (LightGBM's PR-AUC is average precision). Category
    boosters train on the fold's train rows of their category for the global model's rounds."""
    params = booster_params(settings, seed)
    blend, min_pairs = float(settings["category_blend"]), int(settings["category_min_pairs"])

    def fit_predict(train: np.ndarray, valid: np.ndarray, fold: int) -> tuple[np.ndarray, FoldModel]:
        train_set = lgb.Dataset(x.iloc[train], y[train])
        valid_set = lgb.Dataset(x.iloc[valid], y[valid], reference=train_set)
        history: dict = {}
        booster = lgb.train(params, train_set, num_boost_round=int(settings["num_boost_round"]),
                            valid_sets=[valid_set], valid_names=["valid"],
                            callbacks=[lgb.early_stopping(int(settings["early_stopping_rounds"]), verbose=False),
                                       lgb.record_evaluation(history)])
        curves.append([{"epoch": i + 1, "train_loss": None, "valid_pr_auc": round(ap, 6)}
                       for i, ap in enumerate(history["valid"]["average_precision"]) if i % CURVE_EVERY == 0])
        model = FoldModel(booster)
        if blend > 0:
            names, counts = np.unique(category[train], return_counts=True)
            for name in names[counts >= min_pairs]:
                rows = train[category[train] == name]
                if len(np.unique(y[rows])) == 2:
                    model.by_category[str(name)] = lgb.train(params, lgb.Dataset(x.iloc[rows], y[rows]),
                                                             num_boost_round=max(booster.best_iteration, 1))
        return model.predict(x.iloc[valid], category[valid], blend), model

    return fit_predict


def save_models(models: list[FoldModel], model_dir: Path) -> None:
    """LightGBM text files, and a JSON index of the category boosters."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for stale in model_dir.glob("fold_*"):
        stale.unlink()
    index = {}
    for number, model in enumerate(models):
        with atomic_path(model_dir / f"fold_{number}.txt") as tmp:
            model.booster.save_model(str(tmp), num_iteration=model.booster.best_iteration)
        index[str(number)] = {}
        for position, (name, booster) in enumerate(sorted(model.by_category.items())):
            file = f"fold_{number}_category_{position}.txt"
            with atomic_path(model_dir / file) as tmp:
                booster.save_model(str(tmp))
            index[str(number)][name] = file
    write_json(index, model_dir / "categories.json")


def load_models(model_dir: Path) -> list[FoldModel]:
    index_file = model_dir / "categories.json"
    if not index_file.exists():
        raise FileNotFoundError(f"{model_dir}: no models; run `dvc repro train@lightgbm` first")
    index = json.loads(index_file.read_text())
    return [FoldModel(lgb.Booster(model_file=str(model_dir / f"fold_{number}.txt")),
                      {name: lgb.Booster(model_file=str(model_dir / file)) for name, file in categories.items()})
            for number, categories in sorted(index.items(), key=lambda item: int(item[0]))]


def score(model_dir: Path, features: pd.DataFrame, blend: float) -> np.ndarray:
    """Mean score of the fold models saved in `model_dir`."""
    category = features["category"].to_numpy()
    return np.mean([m.predict(features, category, blend) for m in load_models(model_dir)], axis=0)


def importance_table(models: list[FoldModel]) -> pd.DataFrame:
    boosters = [m.booster for m in models]
    gain = np.mean([b.feature_importance("gain") for b in boosters], axis=0)
    table = pd.DataFrame({"feature": boosters[0].feature_name(), "gain": gain / gain.sum()})
    return table.sort_values("gain", ascending=False).round(6)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    params = load_params()
    train, fold = train_folds(params)
    columns = feature_columns(train)
    curves: list = []
    settings = params[NAME]
    with Timer() as timer:
        oof, models = cross_fit(fold, fit_booster(train[columns], train["target"].to_numpy(),
                                                  train["category"].to_numpy(), settings, int(params["seed"]), curves))
    scoring = models
    if settings["refit_full"]:
        # One model on every train pair for the mean early-stopped length: test scores then come from
        # a single model, distributed like the out-of-fold scores the F1 threshold is chosen on.
        rounds = max(1, int(np.mean([m.booster.best_iteration for m in models])))
        scoring = [FoldModel(lgb.train(booster_params(settings, int(params["seed"])),
                                       lgb.Dataset(train[columns], train["target"].to_numpy()),
                                       num_boost_round=rounds))]
    save_models(scoring, paths.model_dir(NAME))
    test = pd.read_parquet(paths.TEST_FEATURES)
    write_scores(NAME, train, fold, oof, test, score(paths.model_dir(NAME), test, float(settings["category_blend"])))
    write_csv(importance_table(models), paths.IMPORTANCE_PLOT)
    write_csv(curve_frame(curves), paths.learning_curve_file(NAME))
    print(f"train {NAME}: {len(models)} folds ({params['train']['folds']}) in {timer.seconds:.1f} s, best iterations "
          f"{[m.booster.best_iteration for m in models]}, category boosters {[len(m.by_category) for m in models]}"
          + ("; test pairs scored by a refit on all train pairs" if settings["refit_full"] else ""))


if __name__ == "__main__":
    run_stage(main)
