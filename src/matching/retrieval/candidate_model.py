"""The candidate model: what catalog matching decides with, trained on what `matching-find` shows it.

A query's candidates are its k nearest catalog products by the index. The competition's pair model
was trained on pairs someone else chose, with its `neighbours` group ranking a pair among the other
pairs of the same file; among a query's retrieved neighbourhood both the candidates and those ranks
look different. So the candidate model is trained on retrieved neighbourhoods: each sampled train
product's k candidates, a labelled pair keeping its label and an unlabelled candidate counted as a
different product (the near misses a catalog is full of) with weight `retrieval.unlabelled_weight`.
Its features are the pair groups (never `neighbours`), the pair's rank and gap among the query's own
candidates for each ranked similarity, and the index's score, rank and gap: all of them a function
of the query and the catalog alone, so a query's matches never depend on the other queries asked
with it. Folds and the inner split group rows by query product.

The decision (`decisions`): `retrieval.decision: auto` keeps the rule with the better F1, each rule at
its best threshold, both on the calibration split (`calibration`) or, without one, out of fold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from matching.data.cleaning import unordered_key
from matching.errors import DataError, StageError
from matching.features.columns import KEYS
from matching.features.groups import NEIGHBOURS
from matching.features.neighbours import SCORES, best_of_others
from matching.features.pairs import pair_features
from matching.features.products import ProductTables
from matching.io import write_json
from matching.matchers import lightgbm
from matching.retrieval.decisions import decided

DECISION = "decision.json"
BOOSTERS = "boosters"  # the subfolder of the model's LightGBM files


def candidate_pairs(candidates: pd.DataFrame) -> pd.DataFrame:
    """Each (query, candidate) as a pair: the query first."""
    return pd.DataFrame({KEYS[0]: candidates.query_id.to_numpy(), KEYS[1]: candidates.candidate_id.to_numpy()})


def query_neighbourhood(query_ids: np.ndarray, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """For each column: the row's gap to the best of its query's other candidates and its rank among them."""
    out = {}
    for name, values in columns.items():
        values = values.astype(np.float64)
        other, rank = best_of_others(query_ids, values)
        missing = np.isnan(values)
        out[f"query_{name}_gap"] = np.where(missing, np.nan, values - other).astype(np.float32)
        out[f"query_{name}_rank"] = np.where(missing, np.nan, rank).astype(np.float32)
    return out


def candidate_features(candidates: pd.DataFrame, tables: ProductTables, groups: list[str]) -> pd.DataFrame:
    """Features of each (query, candidate) row of `candidates` (query_id, candidate_id, rank, ann_score),
    in their order: the pair groups, and the pair among its query's candidates."""
    candidates = candidates.reset_index(drop=True)
    features = pair_features(candidate_pairs(candidates), tables, [g for g in groups if g != NEIGHBOURS])
    query_ids = candidates.query_id.to_numpy(np.int64)
    ranked = {"ann_score": candidates.ann_score.to_numpy(np.float64)}
    if NEIGHBOURS in groups:
        ranked.update({name: features[name].to_numpy() for name in SCORES if name in features})
    extra = {
        "ann_score": candidates.ann_score.to_numpy(np.float32),
        "ann_rank": candidates["rank"].to_numpy(np.float32),
    }
    return pd.concat([features, pd.DataFrame({**extra, **query_neighbourhood(query_ids, ranked)})], axis=1)


def pair_keys(pairs: pd.DataFrame) -> pd.MultiIndex:
    """Each pair's unordered key: the same for (a, b) and (b, a)."""
    return unordered_key(pairs[KEYS[0]].to_numpy(np.int64), pairs[KEYS[1]].to_numpy(np.int64))


def labelled(candidates: pd.DataFrame, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each candidate row's target (a labelled pair's, else 0) and whether a label said so."""
    key = unordered_key(candidates.query_id.to_numpy(np.int64), candidates.candidate_id.to_numpy(np.int64))
    target = pd.Series(pairs.target.to_numpy(), index=pair_keys(pairs))
    target = target[~target.index.duplicated()]
    found = target.reindex(key).to_numpy(np.float64)
    return np.nan_to_num(found, nan=0.0).astype(np.int8), ~np.isnan(found)


@dataclass
class CandidateModel:
    """The fitted candidate model and its decision: rule and threshold, chosen out of fold."""

    models: list[lightgbm.FoldModel]
    columns: list[str]
    rule: str
    threshold: float

    def probability(self, features: pd.DataFrame) -> np.ndarray:
        return np.mean(lightgbm.fold_scores(self.models, features, 0.0), axis=0)

    def decide(self, query_ids: np.ndarray, probability: np.ndarray) -> np.ndarray:
        return decided(self.rule, self.threshold, query_ids, probability)

    def save(self, folder: Path, figures: dict) -> None:
        lightgbm.save_models(self.models, folder / BOOSTERS)
        write_json(
            {"rule": self.rule, "threshold": self.threshold, "columns": self.columns, **figures}, folder / DECISION
        )

    @classmethod
    def load(cls, folder: Path) -> CandidateModel:
        if not (folder / DECISION).exists():
            raise StageError(f"{folder}: no candidate model; run `dvc repro train_candidates` in that repository")
        try:
            decision = json.loads((folder / DECISION).read_text())
        except ValueError:
            raise DataError(f"{folder / DECISION}: not readable JSON; rerun `dvc repro train_candidates`") from None
        models = lightgbm.load_models(folder / BOOSTERS, "train_candidates")
        return cls(models, list(decision["columns"]), decision["rule"], float(decision["threshold"]))
