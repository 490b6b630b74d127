"""What the `train@<matcher>` stages share: reading the features, the folds and the inner split, writing scores.

All matchers share the features, the folds (`train.folds`: product-disjoint or random pairs), the
inner split early stopping reads (`train.inner_valid_share` of each fold's train rows) and the metric.
Each writes out-of-fold scores, its models and its learning curves; `predict` scores the test pairs
from the saved models (`matching.scoring`), as the score command scores new ones. LightAutoML alone,
whose fitted objects are never saved, scores the test pairs in its stage.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from dvclive import Live

from matching import config, paths
from matching.features.columns import KEYS, META, FeatureMatrix, feature_columns
from matching.io import write_parquet
from matching.live import stage_live
from matching.matchers.crossfit import InnerSplit
from matching.matchers.folds import make_folds

log = logging.getLogger(__name__)


@dataclass
class TrainingInputs:
    """What a matcher's stage trains on: the project, its config, features, folds and inner split."""

    layout: paths.Layout
    cfg: config.Config
    train: pd.DataFrame
    test: pd.DataFrame | None  # the test pairs' features, for a matcher that cannot be saved
    fold: np.ndarray
    inner: InnerSplit
    features: FeatureMatrix | None = None  # the train pairs' features as one matrix, for a matcher that asks

    def write_scores(self, name: str, oof: np.ndarray, test_scores: np.ndarray | None = None) -> None:
        """The matcher's out-of-fold scores (with target, category and fold), and test scores if given."""
        oof_frame = self.train[KEYS + ["target", "category"]].assign(fold=self.fold, score=oof)
        write_parquet(oof_frame, self.layout.oof_file(name))
        if test_scores is not None:
            assert self.test is not None, "test scores come with the test pairs' features"
            write_parquet(self.test[KEYS].assign(score=test_scores), self.layout.test_scores_file(name))


def fold_log(layout: paths.Layout, name: str, fold: int) -> Live:
    """dvclive's logger of one fold's learning curve: no dvc.yaml of its own, no experiment saved."""
    return stage_live(layout.fold_log_dir(name, fold))


def log_curves(layout: paths.Layout, name: str, curves: list[list[dict]]) -> None:
    """Each fold's learning curve through dvclive, a step a point (for the networks, a validation read)."""
    for fold, curve in enumerate(curves):
        with fold_log(layout, name, fold) as live:
            for point in curve:
                for key in ("train_loss", "valid_loss", "valid_pr_auc"):
                    if point.get(key) is not None:
                        live.log_metric(key, point[key])
                live.next_step()


def read_feature_matrix(path: Path) -> FeatureMatrix:
    """A feature file's model inputs as one float32 matrix, filled a column at a time: read as a frame
    and copied out, the features would be held two or three times over for a moment."""
    file = pq.ParquetFile(path)
    columns = feature_columns(file.schema_arrow.names)
    values = np.empty((file.metadata.num_rows, len(columns)), np.float32)
    for j, column in enumerate(columns):
        values[:, j] = file.read(columns=[column]).column(0).to_numpy()  # nulls come as NaN
    return FeatureMatrix(values, columns)


def run_matcher(
    name: str,
    train_matcher: Callable[[TrainingInputs], str],
    argv: list[str] | None,
    features: Literal["frame", "matrix", "none"] = "frame",
    test: bool = False,
) -> None:
    """A train stage's main: read what every matcher reads, train, print the matcher's summary. The
    train frame holds the pair features (`features="frame"`) or the pairs' keys, target and category
    alone: a matcher that reads no pair features (`"none"`) or takes them as one float32 matrix
    (`"matrix"`, in `TrainingInputs.features`) spares the memory of the feature columns, 0.6 GB at full
    volume beside a 5 GB product matrix. `test` reads the test pairs' features too."""
    argparse.ArgumentParser(description=f"Stage train@{name}: cross-fit {name} on the pair features").parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params, lightgbm=True)  # LightGBM's own check too: a fit's cost dwarfs its import
    train = pd.read_parquet(layout.train_features, columns=None if features == "frame" else META)
    matrix = read_feature_matrix(layout.train_features) if features == "matrix" else None
    test_features = pd.read_parquet(layout.test_features) if test else None
    left, right = train.variantid1.to_numpy(), train.variantid2.to_numpy()
    fold = make_folds(left, right, cfg.train.n_folds, cfg.seed, cfg.train.folds)
    inner = InnerSplit(left, right, cfg.train.folds, cfg.train.inner_valid_share, cfg.seed)
    summary = train_matcher(TrainingInputs(layout, cfg, train, test_features, fold, inner, matrix))
    log.info(f"train {name} ({cfg.train.folds} folds): {summary}")
