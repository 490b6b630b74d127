"""Stage `predict`: the test pairs scored from the saved models, as `matching-score` scores new pairs.

The distinct test pairs' features (written by the features stage, the training pairs among their
candidates) go through the saved models (`matching.matchers.saved`): every matcher of `train.matchers`
and the ensemble, written to `data/predictions/test.parquet`. `data/submission.csv` holds
(`variantid1, variantid2, target`) for every test row, in order, from `train.submit`: `target` is a
probability, since a 0/1 cut would destroy the ranking the competition metric reads. LightAutoML, which
saves no loadable model, scored the test pairs in its own stage; its scores are taken from there.
"""

from __future__ import annotations

import argparse
import logging

import pandas as pd

from matching import config, paths
from matching.data.cleaning import submission
from matching.encoders.modalities import MODALITIES
from matching.errors import StageError
from matching.features.columns import KEYS
from matching.io import write_csv, write_parquet
from matching.matchers.cross_encoding.serialising import CARD_COLUMNS
from matching.matchers.names import CROSS_ENCODER, SAVED_MATCHERS
from matching.matchers.saved import SavedModels
from matching.npz import StoredArrays
from matching.stage import run_stage

log = logging.getLogger(__name__)


def scored_in_stage(layout: paths.Layout, names: list[str], features: pd.DataFrame) -> dict:
    """Test scores that a matcher's own stage wrote (those without a loadable model), in `features`' order."""
    scores = {}
    for name in names:
        frame = pd.read_parquet(layout.test_scores_file(name))
        if not frame[KEYS].equals(features[KEYS]):
            raise StageError(f"{layout.test_scores_file(name)}: pairs differ from the test features; rerun `dvc repro`")
        scores[name] = frame["score"].to_numpy()
    return scores


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params)
    features = pd.read_parquet(layout.test_features)
    unsaved = tuple(m for m in cfg.train.matchers if m not in SAVED_MATCHERS)
    models = SavedModels.load(layout, cfg, scored_elsewhere=unsaved, every_matcher=True)
    embeddings = {m: StoredArrays(layout.embedding_file(m)) for m in MODALITIES}
    cards = pd.read_parquet(layout.products, columns=CARD_COLUMNS) if CROSS_ENCODER in models.matchers else None
    scores = models.score(features, embeddings, scored_in_stage(layout, list(unsaved), features), cards)
    frame = submission(pd.read_parquet(layout.test_pairs), scores[KEYS + ["score"]])
    write_parquet(scores, layout.test_predictions)
    write_csv(frame, layout.submission)
    log.info(f"predict {models.submit}: {len(frame)} test pairs ({len(scores)} distinct) -> {layout.submission}")


if __name__ == "__main__":
    run_stage(main)
