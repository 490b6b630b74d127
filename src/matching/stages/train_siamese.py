"""Stage `train@siamese`: the siamese network, contrastive loss (`matching.matchers.siamese`)."""

from __future__ import annotations

from matching.matchers import siamese
from matching.matchers.names import SIAMESE
from matching.stage import run_stage
from matching.stages.network_training import train_network
from matching.stages.training import run_matcher

NAME = SIAMESE


def main(argv: list[str] | None = None) -> None:
    run_matcher(
        NAME,
        lambda inputs: train_network(NAME, siamese.fit_siamese, inputs.cfg.siamese, inputs),
        argv,
        features="none",  # the siamese tower sees the products alone
    )


if __name__ == "__main__":
    run_stage(main)
