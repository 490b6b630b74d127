"""Stage `train_candidates`: the candidate model that `matching-find` decides with.

A sample of the train pairs' products (`retrieval.train_queries`) are queries; each gets its
`retrieval.k` candidates from the index, as `matching-find` would (less any test pair); the candidate model
(`matching.retrieval.candidate_model`) is cross-fitted on them, folds grouped by query, and the
decision rule and threshold are chosen on a calibration split (`matching.retrieval.calibration`;
`retrieval.calibration_share: null`: on the out-of-fold scores). Writes the model to
`data/candidate_model/` and the figures of catalog matching the decision was chosen at to
`metrics/catalog_matching.json`: precision counts every kept candidate (an unlabelled one as
wrong: a lower bound), recall is over every known match of the queries asked, retrieved or not.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from matching import config, paths
from matching.data.cleaning import unordered_key
from matching.data.ids import contains, distinct_ids
from matching.encoders.modalities import MODALITIES
from matching.features.columns import KEYS, feature_columns
from matching.features.fitted import FeatureTransforms
from matching.features.products import ProductTables, product_tables
from matching.io import write_json
from matching.matchers.crossfit import InnerSplit
from matching.matchers.folds import make_folds
from matching.matchers.lightgbm import FoldModel, fold_scores, train_lightgbm
from matching.matchers.names import AUTO
from matching.npz import StoredArrays, read_arrays
from matching.retrieval.calibration import CalibrationSplit, kept_pairs_f1
from matching.retrieval.candidate_model import CandidateModel, candidate_features, labelled, pair_keys
from matching.retrieval.candidates import candidate_table, catalog_rows, without_self
from matching.retrieval.decisions import MUTUAL, RULES, is_best, rule_figures
from matching.retrieval.index import CatalogIndex
from matching.retrieval.recall import true_matches
from matching.stage import run_stage

log = logging.getLogger(__name__)


def catalog_tables(layout: paths.Layout, cfg: config.Config, ids: np.ndarray) -> ProductTables:
    """The products `ids` from the prepared table, with the feature transforms the features stage saved."""
    products = pd.read_parquet(layout.products, dtype_backend="pyarrow", filters=[("variantid", "in", ids.tolist())])
    embeddings = {m: functools.partial(StoredArrays, layout.embedding_file(m)) for m in MODALITIES}
    transforms = FeatureTransforms.load(layout.feature_transforms)
    photo_sets = functools.partial(read_arrays, layout.photo_sets)
    return product_tables(products, embeddings, photo_sets, cfg.features.tfidf_max_features, transforms=transforms)


def sampled_queries(pairs: pd.DataFrame, catalog_ids: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """The train pairs' products the catalog holds, `limit` of them drawn by `seed` (sorted)."""
    products = distinct_ids(pairs[KEYS].to_numpy(np.int64))
    products = products[contains(np.sort(catalog_ids), products)]
    if limit is not None and len(products) > limit:
        products = np.sort(np.random.default_rng(seed).choice(products, limit, replace=False))
    return products


def fitted(
    features: pd.DataFrame, query_ids: np.ndarray, weight: np.ndarray, cfg: config.Config, columns: list[str]
) -> tuple[np.ndarray, list[FoldModel]]:
    """The candidate model cross-fitted on `features` (with `target`): out-of-fold scores and the models
    that score new rows. Folds and the inner split by query: a query's candidates are never split
    between fitting and scoring (grouping by unordered pair instead, so that (a, b) and (b, a) never
    straddle a fold, lowered the held-out F1: docs/validation.md, the pair_folds records)."""
    fold = make_folds(query_ids, query_ids, cfg.train.n_folds, cfg.seed, "products")
    inner = InnerSplit(query_ids, query_ids, "products", cfg.train.inner_valid_share, cfg.seed)
    # One booster for every category's candidates, with the candidate model's own parameters over lightgbm's.
    booster = {**cfg.lightgbm.booster, **cfg.retrieval.booster}
    settings = dataclasses.replace(cfg.lightgbm, category_blend=0.0, booster=booster)
    oof, _, scoring, _ = train_lightgbm(features, columns, fold, inner, settings, cfg.seed, weight=weight)
    return oof, scoring


def calibrated(
    candidates: pd.DataFrame,
    features: pd.DataFrame,
    target: np.ndarray,
    pairs: pd.DataFrame,
    fit: Callable[..., tuple[np.ndarray, list[FoldModel]]],
    share: float,
    unlabelled_weight: float,
    seed: int,
) -> dict[str, dict[str, float]] | None:
    """Each rule at its best threshold on the calibration split (`matching.retrieval.calibration`,
    `share` of the pairs held out); None when the held-out pairs hold no match to recall."""
    query_ids = candidates.query_id.to_numpy(np.int64)
    candidate_ids = candidates.candidate_id.to_numpy(np.int64)
    split = CalibrationSplit.draw(pairs, query_ids, candidate_ids, share, seed)
    held = split.held_rows
    positives = split.held_matches(distinct_ids(query_ids[held]))
    if positives == 0:
        log.warning("retrieval.calibration_share: the held-out pairs hold no match; deciding out of fold")
        return None
    rows = split.fit_rows
    fit_target, fit_known = labelled(candidates[rows], split.fit_pairs)
    weight = np.where(fit_known, 1.0, unlabelled_weight)
    _, models = fit(features[rows].assign(target=fit_target), query_ids[rows], weight)
    probability = np.mean(fold_scores(models, features[held], 0.0), axis=0)
    recalled, _ = labelled(candidates[held], split.held_pairs)
    return {
        rule: kept_pairs_f1(rule, query_ids[held], candidate_ids[held], probability, target[held], recalled, positives)
        for rule in RULES
    }


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params, lightgbm=True)
    retrieval = cfg.retrieval
    pairs = pd.read_parquet(layout.train_pairs)
    index = CatalogIndex.load(layout.retrieval_index)
    queries = sampled_queries(pairs, index.ids, retrieval.train_queries, cfg.seed)
    vectors = index.vectors(catalog_rows(index.ids, queries, str(layout.train_pairs)))
    found, scores = index.search(vectors, retrieval.k + 1, retrieval.probes, retrieval.rerank)
    candidates = candidate_table(queries, *without_self(queries, found, scores, retrieval.k))
    # A test pair is never a training row, as everywhere in the pipeline: unlabelled, it would be learnt
    # as a different product just before it is asked.
    test = pd.read_parquet(layout.test_pairs)
    asked = unordered_key(candidates.query_id.to_numpy(), candidates.candidate_id.to_numpy()).isin(pair_keys(test))
    candidates = candidates[~asked].reset_index(drop=True)
    target, known = labelled(candidates, pairs)
    tables = catalog_tables(layout, cfg, distinct_ids(np.r_[queries, candidates.candidate_id.to_numpy()]))
    features = candidate_features(candidates, tables, list(cfg.features.groups)).assign(target=target)
    columns = [c for c in feature_columns(features) if c != "target"]
    query_ids = candidates.query_id.to_numpy(np.int64)
    candidate_ids = candidates.candidate_id.to_numpy(np.int64)
    fit = functools.partial(fitted, cfg=cfg, columns=columns)
    oof, scoring = fit(features, query_ids, np.where(known, 1.0, retrieval.unlabelled_weight))
    matches = true_matches(pairs)
    positives = int(matches.query_id.isin(queries).sum())
    figures = {rule: rule_figures(rule, query_ids, oof, target, positives, candidate_ids) for rule in (*RULES, MUTUAL)}
    decision = {rule: figures[rule] for rule in RULES}
    decided_on = "out_of_fold"
    if retrieval.calibration_share is not None:
        share, weight = retrieval.calibration_share, retrieval.unlabelled_weight
        calibration = calibrated(candidates, features, target, pairs, fit, share, weight, cfg.seed)
        if calibration is not None:
            decision, decided_on = calibration, "calibration"
    rule = max(RULES, key=lambda r: decision[r]["f1"]) if retrieval.decision == AUTO else retrieval.decision
    retrieved = int(target.sum())
    summary = {
        "queries": len(queries),
        "candidates": len(candidates),
        "labelled_candidates": int(known.sum()),
        "known_matches": positives,
        "retrieved_matches": retrieved,
        "out_of_fold": figures,
        "decided_on": decided_on,
        "decision_figures": decision,
        # `mutual` can only be seen where a query's best candidate was itself a query
        "best_candidates_asked_share": float(contains(np.sort(queries), candidate_ids[is_best(query_ids, oof)]).mean()),
    }
    chosen = decision[rule]
    CandidateModel(scoring, columns, rule, chosen["threshold"]).save(layout.candidate_model, summary)
    write_json(
        {
            "catalog_rule": rule,
            "catalog_threshold": round(chosen["threshold"], 6),
            "catalog_precision": round(chosen["precision"], 6),
            "catalog_recall": round(chosen["recall"], 6),
            "catalog_f1": round(chosen["f1"], 6),
            "catalog_retrieved_share": round(retrieved / max(positives, 1), 6),
        },
        layout.catalog_metrics,
    )
    log.info(
        f"candidate model: {len(queries):,} queries x {retrieval.k} candidates ({int(known.sum()):,} labelled); "
        + ", ".join(f"{r}: out-of-fold F1 {figures[r]['f1']:.4f}" for r in figures)
        + f"; decides by {rule} at {chosen['threshold']:.4f} (F1 {chosen['f1']:.4f}, {decided_on})"
    )


if __name__ == "__main__":
    run_stage(main)
