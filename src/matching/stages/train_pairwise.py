"""Stage `train@pairwise`: the pairwise classifier network (`matching.matchers.pairwise`)."""

from __future__ import annotations

from matching.matchers import pairwise
from matching.matchers.names import PAIRWISE
from matching.stage import run_stage
from matching.stages.network_training import train_network
from matching.stages.training import run_matcher

NAME = PAIRWISE


def main(argv: list[str] | None = None) -> None:
    run_matcher(
        NAME,
        lambda inputs: train_network(NAME, pairwise.fit_pairwise, inputs.cfg.pairwise, inputs),
        argv,
    )


if __name__ == "__main__":
    run_stage(main)
