"""Matcher `lightgbm`: gradient boosting on the pair features.

One model per fold, fitted on the fold's train rows less an inner split that early stopping reads;
the held-out fold is scored only once the model is fixed. The train pairs are binned once (float32,
bin edges from all train rows' features, no labels) and every fit takes a subset of those bins: at
full volume constructing a Dataset per fit cost more than a minute. Test pairs are scored by one model
refitted on all train pairs for the folds' mean length (`refit_full`) or by the fold models' mean.
Models are LightGBM text files: loading them runs no code.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from matching import THREADS, threads_for
from matching.config import LightGBM
from matching.io import atomic_path, write_json
from matching.manifest import check_manifest, write_manifest
from matching.matchers.crossfit import InnerSplit, check_stopping_rows, cross_fit

CURVE_EVERY = 10  # iterations between learning-curve points
LOG_EVERY = 100  # iterations between progress lines
TOP_FEATURES = 25  # features the importance table keeps
log = logging.getLogger(__name__)
# Defaults a user may override in the lightgbm section; objective, metric and seed are the matcher's own.
BOOSTER_DEFAULTS = {"deterministic": True, "force_row_wise": True, "verbosity": -1}


def booster_params(settings: LightGBM, seed: int, rows: int | None = None) -> dict:
    """LightGBM's parameters; with `rows`, the thread count for that much work (`threads_for`)."""
    return {
        **BOOSTER_DEFAULTS,
        **settings.booster,
        "objective": "binary",
        "metric": ["average_precision", "binary_logloss"],
        "first_metric_only": True,
        "seed": seed,
        "num_threads": THREADS if rows is None else threads_for(rows),
    }


@dataclass
class FoldModel:
    """A fold's global booster and, when `category_blend` > 0, one booster per large level-2 category."""

    booster: lgb.Booster
    by_category: dict[str, lgb.Booster] = field(default_factory=dict)

    def predict(self, x: pd.DataFrame, category: np.ndarray, blend: float) -> np.ndarray:
        scores = np.asarray(
            self.booster.predict(x[self.booster.feature_name()], num_iteration=self.booster.best_iteration)
        )
        for name, booster in self.by_category.items():
            rows = category == name
            if rows.any():
                category_scores = np.asarray(booster.predict(x[booster.feature_name()][rows]))
                scores[rows] = (1 - blend) * scores[rows] + blend * category_scores
        return scores


def subset(data: lgb.Dataset, rows: np.ndarray) -> lgb.Dataset:
    """The binned rows `rows` of `data`, in file order."""
    return data.subset(np.sort(rows))  # type: ignore[arg-type]  # LightGBM takes an index array, typed as a list


def progress(fold: int):
    """A LightGBM callback: a line every LOG_EVERY iterations with the inner split's average precision."""
    start = time.perf_counter()

    def report(env: lgb.callback.CallbackEnv) -> None:
        if (env.iteration + 1) % LOG_EVERY == 0 and env.evaluation_result_list:
            name, value = env.evaluation_result_list[0][1:3]  # (data name, metric name, value, ...)
            log.info(
                f"  fold {fold + 1} iteration {env.iteration + 1}: inner-split {name} {value:.4f}, "
                f"{time.perf_counter() - start:.1f} s"
            )

    return report


def binned(x: pd.DataFrame, y: np.ndarray, params: dict, weight: np.ndarray | None = None) -> lgb.Dataset:
    """All rows binned once; `Dataset.subset` of it shares the bins (and the weights), so a fold's fit
    bins nothing."""
    return lgb.Dataset(
        x.to_numpy(np.float32), y, weight=weight, feature_name=list(x.columns), params=params, free_raw_data=False
    ).construct()


def fit_booster(
    x: pd.DataFrame,
    data: lgb.Dataset,
    category: np.ndarray,
    settings: LightGBM,
    params: dict,
    inner: InnerSplit,
    curves: list,
    fold_callbacks: Callable[[int], list] | None = None,
):
    """A `fit_predict` for `cross_fit`: early stopping on the inner split of the fold's train rows;
    its average precision by iteration goes to `curves` (LightGBM's PR-AUC is average precision).
    Category boosters train on the fold's train rows of their category for the global model's rounds."""
    blend = settings.category_blend
    y = np.asarray(data.get_label())

    def fit_predict(train: np.ndarray, valid: np.ndarray, fold: int) -> tuple[np.ndarray, FoldModel]:
        fit, stop = inner(train, fold)
        check_stopping_rows(y[stop], fold)
        fit_set, stop_set = subset(data, fit), subset(data, stop)
        history: dict = {}
        booster = lgb.train(
            params,
            fit_set,
            num_boost_round=settings.num_boost_round,
            valid_sets=[stop_set],
            valid_names=["stop"],
            callbacks=[
                lgb.early_stopping(settings.early_stopping_rounds, verbose=False),
                lgb.record_evaluation(history),
                progress(fold),
                *(fold_callbacks(fold) if fold_callbacks else []),
            ],
        )
        curves.append(
            [
                {"epoch": i + 1, "train_loss": None, "valid_loss": round(loss, 6), "valid_pr_auc": round(ap, 6)}
                for i, (ap, loss) in enumerate(
                    zip(history["stop"]["average_precision"], history["stop"]["binary_logloss"])
                )
                if i % CURVE_EVERY == 0
            ]
        )
        model = FoldModel(booster)
        if blend > 0:
            names, counts = np.unique(category[train], return_counts=True)
            for name in names[counts >= settings.category_min_pairs]:
                rows = train[category[train] == name]
                if len(np.unique(y[rows])) == 2:
                    model.by_category[str(name)] = lgb.train(
                        params, subset(data, rows), num_boost_round=max(booster.best_iteration, 1)
                    )
        return model.predict(x.iloc[valid], category[valid], blend), model

    return fit_predict


def train_lightgbm(
    train: pd.DataFrame,
    columns: list[str],
    fold: np.ndarray,
    inner: InnerSplit,
    settings: LightGBM,
    seed: int,
    fold_callbacks: Callable[[int], list] | None = None,
    weight: np.ndarray | None = None,
) -> tuple[np.ndarray, list[FoldModel], list[FoldModel], list]:
    """Out-of-fold scores, the fold models, the models that score new pairs, and the learning curves;
    `fold_callbacks(fold)` gives more LightGBM callbacks for a fold's fit (the stage's dvclive logger);
    `weight`, each row's weight in the fits (and in early stopping's reads)."""
    curves: list = []
    params = booster_params(settings, seed, len(train))
    x = train[columns]
    data = binned(x, train["target"].to_numpy(), params, weight)
    fit = fit_booster(x, data, train["category"].to_numpy(), settings, params, inner, curves, fold_callbacks)
    oof, models = cross_fit(fold, fit)
    scoring = models
    if settings.refit_full:
        # One model on every train pair for the mean early-stopped length: test scores then come from
        # a single model, distributed like the out-of-fold scores the F1 threshold is chosen on.
        rounds = max(1, int(np.mean([m.booster.best_iteration for m in models])))
        scoring = [FoldModel(lgb.train(params, data, num_boost_round=rounds))]
    return oof, models, scoring, curves


def model_text(booster: lgb.Booster, num_iteration: int | None = None) -> str:
    """The model as LightGBM's text, its record of the thread count made neutral (0: as the loading
    process sets it): the same model from any thread count gives the same bytes."""
    text = booster.model_to_string(num_iteration=num_iteration)
    return re.sub(r"^\[num_threads: \d+\]$", "[num_threads: 0]", text, count=1, flags=re.MULTILINE)


def save_models(models: list[FoldModel], model_dir: Path) -> None:
    """LightGBM text files, and a JSON index of the category boosters."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for stale in model_dir.glob("fold_*"):
        stale.unlink()
    index: dict[str, dict[str, str]] = {}
    for number, model in enumerate(models):
        with atomic_path(model_dir / f"fold_{number}.txt") as tmp:
            tmp.write_text(model_text(model.booster, model.booster.best_iteration))
        index[str(number)] = {}
        for position, (name, booster) in enumerate(sorted(model.by_category.items())):
            file = f"fold_{number}_category_{position}.txt"
            with atomic_path(model_dir / file) as tmp:
                tmp.write_text(model_text(booster))
            index[str(number)][name] = file
    write_json(index, model_dir / "categories.json")
    files = [f"fold_{number}.txt" for number in index] + [f for files in index.values() for f in files.values()]
    write_manifest(model_dir, [*files, "categories.json"])


def load_models(model_dir: Path, stage: str = "train@lightgbm") -> list[FoldModel]:
    """The models `stage` saved in `model_dir`."""
    index_file = model_dir / "categories.json"
    if not index_file.exists():
        raise FileNotFoundError(f"{model_dir}: no models; run `dvc repro {stage}` first")
    check_manifest(model_dir, stage)  # before LightGBM reads a file: a cut one crashes the process
    index = json.loads(index_file.read_text())
    return [
        FoldModel(
            lgb.Booster(model_file=str(model_dir / f"fold_{number}.txt")),
            {name: lgb.Booster(model_file=str(model_dir / file)) for name, file in categories.items()},
        )
        for number, categories in sorted(index.items(), key=lambda item: int(item[0]))
    ]


def fold_scores(models: list[FoldModel], features: pd.DataFrame, blend: float) -> list[np.ndarray]:
    """Each model's scores (one model with `refit_full`)."""
    category = features["category"].to_numpy()
    return [m.predict(features, category, blend) for m in models]


def importance_table(models: list[FoldModel]) -> pd.DataFrame:
    boosters = [m.booster for m in models]
    gain = np.mean([b.feature_importance("gain") for b in boosters], axis=0)
    table = pd.DataFrame({"feature": boosters[0].feature_name(), "gain": gain / gain.sum()})
    return table.sort_values("gain", ascending=False).round(6)
