"""Stage `train@pairwise`: the pairwise classifier network (`matching.matchers.pairwise`)."""

from __future__ import annotations

from functools import partial

from matching.matchers import pairwise
from matching.matchers.names import PAIRWISE
from matching.stage import run_stage
from matching.stages.network_training import train_network
from matching.stages.training import TrainingInputs, run_matcher

NAME = PAIRWISE


def train(inputs: TrainingInputs) -> str:
    assert inputs.features is not None, "run_matcher reads the feature matrix (features='matrix')"
    fit = partial(pairwise.fit_pairwise, pair_features=inputs.features)
    return train_network(NAME, fit, inputs.cfg.pairwise, inputs)


def main(argv: list[str] | None = None) -> None:
    run_matcher(NAME, train, argv, features="matrix")  # one float32 copy of the features, not a frame too


if __name__ == "__main__":
    run_stage(main)
