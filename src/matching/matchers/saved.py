"""The trained matchers as saved under `models/`, loaded without running code, scoring pair features.

LightGBM text files, safetensors weights with their architecture and block norms (the cross-encoder's
with its config, tokenizer and serialisation), the ensemble's JSON (and, for `rank_mean`, its
out-of-fold reference). LightAutoML keeps no loadable model (its
fitted objects are pickles, which this project never loads), so a model that needs it cannot score
new pairs; `predict` takes the test scores its stage wrote instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from matching import config, paths
from matching.data.ids import distinct_ids, positions
from matching.device import resolve_device
from matching.errors import StageError
from matching.features.columns import KEYS
from matching.matchers import fitting, lightgbm, networks, pairwise, siamese
from matching.matchers.cross_encoder import SavedCrossEncoder
from matching.matchers.ensemble import ensemble_scores, load_ensemble, submitted_model
from matching.matchers.names import CROSS_ENCODER, ENSEMBLE, LIGHTGBM, PAIRWISE, SAVED_MATCHERS, SIAMESE

NETWORK_MODULES = {SIAMESE: siamese, PAIRWISE: pairwise}


def models_needed(train: config.Train, submit: str, every_matcher: bool = False) -> list[str]:
    """The matchers whose scores the submitted model needs (all of them for the ensemble)."""
    return list(train.matchers) if every_matcher or submit == ENSEMBLE else [submit]


def embeddings_of(embeddings: Mapping[str, Mapping[str, np.ndarray]], ids: np.ndarray) -> dict[str, dict]:
    """Each modality's rows of the products `ids` (the files may be memory-mapped: only those rows are read)."""
    out = {}
    for modality, arrays in embeddings.items():
        rows = positions(np.asarray(arrays["variantid"]), ids)
        rows = rows[rows >= 0]
        out[modality] = {name: np.asarray(arrays[name][rows]) for name in arrays}
    return out


@dataclass
class SavedModels:
    """The saved models that the submitted model (`train.submit`) needs, loaded once."""

    submit: str
    matchers: list[str]
    category_blend: float
    lightgbm: list[lightgbm.FoldModel] = field(default_factory=list)
    networks: dict[str, tuple[list[torch.nn.Module], dict]] = field(default_factory=dict)  # folds, architecture
    ensemble: tuple[dict, dict] | None = None
    cross_encoder: SavedCrossEncoder | None = None
    cross_encoder_device: str = "cpu"

    @classmethod
    def load(
        cls,
        layout: paths.Layout,
        cfg: config.Config,
        scored_elsewhere: tuple[str, ...] = (),
        every_matcher: bool = False,
    ) -> SavedModels:
        """Refuses, in one line, a model that needs a matcher it cannot load (unless `scored_elsewhere`)."""
        submit = submitted_model(cfg.train, layout.ensemble_file)
        matchers = models_needed(cfg.train, submit, every_matcher)
        for name in matchers:
            if name not in SAVED_MATCHERS and name not in scored_elsewhere:
                raise StageError(
                    f"{layout.params}: the submitted model ({submit}) needs {name}, whose fitted models are Python "
                    "pickles that this project never loads, so it cannot score new pairs; set train.submit to one of "
                    f"{', '.join(SAVED_MATCHERS)} (or drop {name} from train.matchers) and rerun `dvc repro` there"
                )
        models = cls(submit, matchers, cfg.lightgbm.category_blend)
        try:
            if LIGHTGBM in matchers:
                models.lightgbm = lightgbm.load_models(layout.model_dir(LIGHTGBM))
            for name in (m for m in matchers if m in NETWORK_MODULES):
                folder = layout.model_dir(name)
                folds = fitting.load_fold_models(folder, NETWORK_MODULES[name].build)
                models.networks[name] = (folds, json.loads((folder / "architecture.json").read_text()))
            if CROSS_ENCODER in matchers:
                models.cross_encoder = SavedCrossEncoder.load(layout.model_dir(CROSS_ENCODER))
                models.cross_encoder_device = resolve_device(cfg.cross_encoder.device)
            if submit == ENSEMBLE or every_matcher:
                models.ensemble = load_ensemble(layout.model_dir(ENSEMBLE))
        except (FileNotFoundError, KeyError) as error:
            raise StageError(
                f"{layout.root}: a trained model is missing or out of date ({error}); run `dvc repro` there"
            ) from None
        return models

    def score(
        self,
        features: pd.DataFrame,
        embeddings: Mapping[str, Mapping[str, np.ndarray]],
        precomputed: Mapping[str, np.ndarray] | None = None,
        cards: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Each matcher's score of each row of `features` (pair features with KEYS and category): the mean
        of its fold models' scores; the ensemble's if submitted; and `score`, the submitted model's.
        `embeddings` (and `cards`, the products table's text columns, for the cross-encoder) hold at
        least the pairs' products; `precomputed` gives scores of matchers scored elsewhere."""
        out = features[KEYS].reset_index(drop=True)
        precomputed = precomputed or {}
        folds: dict[str, list[np.ndarray]] = {}
        for name in self.matchers:
            if name in precomputed:
                folds[name] = [np.asarray(precomputed[name], dtype=np.float64)]
            elif name == LIGHTGBM:
                folds[name] = lightgbm.fold_scores(self.lightgbm, features, self.category_blend)
            elif name == CROSS_ENCODER:
                assert self.cross_encoder is not None  # loaded with the matchers
                device = torch.device(self.cross_encoder_device)
                folds[name] = self.cross_encoder.fold_scores(features[KEYS], cards, device)
            else:
                folds[name] = self._network_fold_scores(name, features, embeddings)
            out[name] = np.mean(folds[name], axis=0)
        if self.ensemble is not None:
            fitted, reference = self.ensemble
            out[ENSEMBLE] = fold_ensemble(fitted, reference, [folds[name] for name in fitted["matchers"]])
        out["score"] = out[self.submit]
        return out

    def _network_fold_scores(self, name: str, features: pd.DataFrame, embeddings: Mapping) -> list[np.ndarray]:
        """Each fold model's scores; products scaled by the norms saved with the network."""
        folds, architecture = self.networks[name]
        ids = distinct_ids(features[KEYS].to_numpy(np.int64))
        blocks = networks.product_blocks(embeddings_of(embeddings, ids), architecture["norms"])
        rows, cpu = np.arange(len(features)), torch.device("cpu")
        extra = {"features": pairwise.feature_matrix(features, architecture["features"])} if name == PAIRWISE else {}
        with torch.inference_mode():
            return [NETWORK_MODULES[name].pair_scorer(m, blocks, features, cpu, **extra)[1](rows) for m in folds]


def fold_ensemble(fitted: dict, reference: dict, fold_scores: list[list[np.ndarray]]) -> np.ndarray:
    """The ensemble of each fold's models, averaged: the stacker was fitted on one fold model's score a
    row (out of fold), so it is applied to one fold model's scores a row, never to their mean, whose
    narrower spread moves its probabilities off the out-of-fold threshold. A matcher with one model
    (LightGBM refitted on every pair, scores given) gives it to every fold."""
    n_folds = max(len(scores) for scores in fold_scores)
    columns = [[scores[fold if len(scores) > 1 else 0] for scores in fold_scores] for fold in range(n_folds)]
    return np.mean([ensemble_scores(fitted, reference, np.column_stack(c)) for c in columns], axis=0)
