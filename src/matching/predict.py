"""Stage `predict`: score every test pair once, in test order, to `data/submission.csv`.

`target` is a probability: a 0/1 cut would destroy the ranking the competition metric reads.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from matching import paths, train_lightgbm
from matching.io import DataError, load_params, run_stage, write_csv

SCORERS: dict[str, Callable[[Path, pd.DataFrame], np.ndarray]] = {train_lightgbm.MODEL: train_lightgbm.score}


def submission(test_pairs: pd.DataFrame, features: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """The submission frame; refuses features that are not the test pairs in test order."""
    keys = ["variantid1", "variantid2"]
    if len(features) != len(test_pairs) or not (features[keys].to_numpy() == test_pairs[keys].to_numpy()).all():
        raise DataError(f"{paths.TEST_FEATURES}: rows differ from {paths.TEST_PAIRS}; rerun `dvc repro features`")
    return test_pairs[keys].assign(target=np.clip(scores, 0.0, 1.0))


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    model = load_params()["train"]["model"]
    if model not in SCORERS:
        raise DataError(f"params.yaml: train.model is {model!r}; use one of {', '.join(SCORERS)}")
    features = pd.read_parquet(paths.TEST_FEATURES)
    scores = SCORERS[model](paths.model_dir(model), features)
    frame = submission(pd.read_parquet(paths.TEST_PAIRS), features, scores)
    write_csv(frame, paths.SUBMISSION)
    print(f"predict {model}: {len(frame)} test pairs -> {paths.SUBMISSION}")


if __name__ == "__main__":
    run_stage(main)
