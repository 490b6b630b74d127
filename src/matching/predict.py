"""Stage `predict`: the chosen model's score for every test pair, once, in test order.

Writes `data/submission.csv` (`variantid1, variantid2, target`); `target` is a probability, since
a 0/1 cut would destroy the ranking the competition metric reads. `train.model` picks a matcher
or the ensemble; each of them scored the test pairs with its saved fold models.
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from matching import paths
from matching.crossfit import SCORE_KEYS
from matching.io import StageError, load_params, run_stage, write_csv


def submission(test_pairs: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """The submission frame; refuses scores that are not the test pairs in test order."""
    if len(scores) != len(test_pairs) or not (scores[SCORE_KEYS].to_numpy() == test_pairs[SCORE_KEYS].to_numpy()).all():
        raise StageError("test scores do not cover the test pairs in test order; rerun `dvc repro`")
    return test_pairs[SCORE_KEYS].assign(target=np.clip(scores["score"].to_numpy(), 0.0, 1.0))


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    train = load_params()["train"]
    model = train["model"]
    if model not in list(train["matchers"]) + [paths.ENSEMBLE_NAME]:
        raise StageError(f"params.yaml: train.model is {model!r}; use one of train.matchers "
                         f"({', '.join(train['matchers'])}) or {paths.ENSEMBLE_NAME}")
    frame = submission(pd.read_parquet(paths.TEST_PAIRS), pd.read_parquet(paths.test_scores_file(model)))
    write_csv(frame, paths.SUBMISSION)
    print(f"predict {model}: {len(frame)} test pairs -> {paths.SUBMISSION}")


if __name__ == "__main__":
    run_stage(main)
