"""Matcher `lightautoml`: LightAutoML's TabularAutoML preset on the pair features.

An optional extra (`pip install '.[automl]'`). Fitted once per product-disjoint fold like every
matcher. Its fitted models are pickled Python objects, which this project never loads from
`models/`, so the stage keeps their description, not the objects, and scores the test pairs itself.
Its early stopping runs on LightAutoML's own inner folds of the fold's train rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from matching.config import LightAutoML
from matching.errors import StageError
from matching.features.columns import feature_columns


def tabular_automl():
    try:
        from lightautoml.automl.presets.tabular_presets import TabularAutoML
        from lightautoml.tasks import Task
    except ImportError as error:
        raise StageError(
            f"LightAutoML is not installed ({error}); install the extra with "
            "`pip install '.[automl]'` (or `make setup-automl`), or pick another model"
        ) from None
    return TabularAutoML, Task


def fit_automl(train: pd.DataFrame, test: pd.DataFrame, settings: LightAutoML, seed: int, test_scores: list):
    TabularAutoML, Task = tabular_automl()
    columns = feature_columns(train) + ["target"]

    def fit_predict(train_rows: np.ndarray, valid_rows: np.ndarray, fold: int):
        automl = TabularAutoML(
            task=Task("binary"),
            timeout=settings.timeout,
            cpu_limit=settings.cpu_limit,
            reader_params={"cv": settings.inner_folds, "random_state": seed + fold, "n_jobs": 1},
            general_params={"use_algos": [list(settings.algorithms)]},
        )
        automl.fit_predict(
            train.iloc[train_rows][columns].reset_index(drop=True), roles={"target": "target"}, verbose=0
        )
        test_scores.append(automl.predict(test[columns[:-1]]).data[:, 0])
        return automl.predict(train.iloc[valid_rows][columns[:-1]]).data[:, 0], automl.create_model_str_desc()

    return fit_predict
