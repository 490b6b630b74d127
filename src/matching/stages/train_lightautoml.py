"""Stage `train@lightautoml`: LightAutoML's TabularAutoML preset, an optional extra (`matchers.lightautoml`)."""

from __future__ import annotations

import numpy as np

from matching.io import write_json
from matching.matchers import lightautoml
from matching.matchers.crossfit import Timer, cross_fit
from matching.matchers.names import LIGHTAUTOML
from matching.stage import run_stage
from matching.stages.training import TrainingInputs, run_matcher

NAME = LIGHTAUTOML


def train(inputs: TrainingInputs) -> str:
    settings, layout = inputs.cfg.lightautoml, inputs.layout
    test_scores: list = []
    with Timer() as timer:
        oof, descriptions = cross_fit(
            inputs.fold, lightautoml.fit_automl(inputs.train, inputs.test, settings, inputs.cfg.seed, test_scores)
        )
    inputs.write_scores(NAME, oof, np.mean(test_scores, axis=0))
    write_json({"folds": descriptions}, layout.model_dir(NAME) / "description.json")
    write_json(
        {"folds": len(descriptions), "seconds_per_fold_limit": settings.timeout},
        layout.training_report_dir(NAME) / "summary.json",
    )
    return f"{len(descriptions)} folds in {timer.seconds:.1f} s"


def main(argv: list[str] | None = None) -> None:
    lightautoml.tabular_automl()  # fail before any work if the extra is missing
    run_matcher(NAME, train, argv, test=True)


if __name__ == "__main__":
    run_stage(main)
