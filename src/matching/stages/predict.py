"""Stage `predict`: the submitted model's score for every test row, in test order.

Writes `data/submission.csv` (`variantid1, variantid2, target`); `target` is a probability, since
a 0/1 cut would destroy the ranking the competition metric reads. `train.submit` picks a matcher
or the ensemble; each of them scored the distinct test pairs with its saved models, and every test
row gets its pair's score: a repeated row or the other orientation the same score, a self pair 1.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from matching import config, paths
from matching.data.cleaning import scores_of_rows
from matching.features.columns import KEYS
from matching.io import StageError, run_stage, write_csv


def submission(test_pairs: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """The submission frame; refuses scores that leave a test row without a score."""
    row_scores = scores_of_rows(test_pairs, scores)
    if np.isnan(row_scores).any():
        row = int(np.flatnonzero(np.isnan(row_scores))[0])
        raise StageError(
            f"test row {row} has no score: the test scores are older than the test pairs; rerun `dvc repro`"
        )
    return test_pairs[KEYS].assign(target=np.clip(row_scores, 0.0, 1.0))


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    layout = paths.project()
    model = config.load(layout.params).train.submit
    frame = submission(pd.read_parquet(layout.test_pairs), pd.read_parquet(layout.test_scores_file(model)))
    write_csv(frame, layout.submission)
    print(f"predict {model}: {len(frame)} test pairs -> {layout.submission}")


if __name__ == "__main__":
    run_stage(main)
