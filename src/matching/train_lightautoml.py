"""Stage `train@lightautoml`: LightAutoML's TabularAutoML preset on the pair features.

An optional extra (`pip install '.[automl]'`). Fitted once per product-disjoint fold like every
matcher. Its fitted models are pickled Python objects, which this project never loads from
`models/`, so the stage keeps their description, not the objects, and scores the test pairs itself.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from matching import paths
from matching.crossfit import Timer, cross_fit, train_folds, write_scores
from matching.features import feature_columns
from matching.io import StageError, load_params, run_stage, write_json

NAME = "lightautoml"


def tabular_automl():
    try:
        from lightautoml.automl.presets.tabular_presets import TabularAutoML
        from lightautoml.tasks import Task
    except ImportError as error:
        raise StageError(f"LightAutoML is not installed ({error}); install the extra with "
                         "`pip install '.[automl]'` (or `make setup-automl`), or pick another model") from None
    return TabularAutoML, Task


def fit_automl(train: pd.DataFrame, test: pd.DataFrame, settings: dict, seed: int, test_scores: list):
    TabularAutoML, Task = tabular_automl()
    columns = feature_columns(train) + ["target"]

    def fit_predict(train_rows: np.ndarray, valid_rows: np.ndarray, fold: int):
        automl = TabularAutoML(
            task=Task("binary"), timeout=int(settings["timeout"]), cpu_limit=int(settings["cpu_limit"]),
            reader_params={"cv": int(settings["inner_folds"]), "random_state": seed + fold, "n_jobs": 1},
            general_params={"use_algos": [list(settings["algorithms"])]})
        automl.fit_predict(train.iloc[train_rows][columns].reset_index(drop=True), roles={"target": "target"},
                           verbose=0)
        test_scores.append(automl.predict(test[columns[:-1]]).data[:, 0])
        return automl.predict(train.iloc[valid_rows][columns[:-1]]).data[:, 0], automl.create_model_str_desc()

    return fit_predict


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    params = load_params()
    tabular_automl()  # fail before any work if the extra is missing
    train, fold = train_folds(params)
    test = pd.read_parquet(paths.TEST_FEATURES)
    test_scores: list = []
    with Timer() as timer:
        oof, descriptions = cross_fit(fold, fit_automl(train, test, params[NAME], int(params["seed"]), test_scores))
    write_scores(NAME, train, fold, oof, test, np.mean(test_scores, axis=0))
    write_json({"folds": descriptions}, paths.model_dir(NAME) / "description.json")
    write_json({"folds": len(descriptions), "seconds_per_fold_limit": int(params[NAME]["timeout"])},
               paths.training_report_dir(NAME) / "summary.json")
    print(f"train {NAME}: {len(descriptions)} folds in {timer.seconds:.1f} s")


if __name__ == "__main__":
    run_stage(main)
