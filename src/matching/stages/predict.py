"""Stage `predict`: the chosen model's score for every test pair, once, in test order.

Writes `data/submission.csv` (`variantid1, variantid2, target`); `target` is a probability, since
a 0/1 cut would destroy the ranking the competition metric reads. `train.submit` picks a matcher
or the ensemble; each of them scored the test pairs with its saved fold models.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from matching import config, paths
from matching.features.columns import KEYS
from matching.io import StageError, run_stage, write_csv


def submission(test_pairs: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """The submission frame; refuses scores that are not the test pairs in test order."""
    if len(scores) != len(test_pairs) or not (scores[KEYS].to_numpy() == test_pairs[KEYS].to_numpy()).all():
        raise StageError("test scores do not cover the test pairs in test order; rerun `dvc repro`")
    return test_pairs[KEYS].assign(target=np.clip(scores["score"].to_numpy(), 0.0, 1.0))


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    layout = paths.project()
    model = config.load(layout.params).train.submit
    frame = submission(pd.read_parquet(layout.test_pairs), pd.read_parquet(layout.test_scores_file(model)))
    write_csv(frame, layout.submission)
    print(f"predict {model}: {len(frame)} test pairs -> {layout.submission}")


if __name__ == "__main__":
    run_stage(main)
