"""Stage `ensemble`: combine the matchers' out-of-fold scores, and say whether that beats the best one.

`rank_mean` averages each matcher's rank-normalised scores. `stacking` fits a logistic regression
on the matchers' out-of-fold scores, itself cross-fitted over the same folds, so the ensemble's own
out-of-fold scores never come from a model that saw their row. What new pairs are scored with goes to
`models/ensemble/`: `ensemble.json` (method, matchers, stacker weights) and, for `rank_mean`, the
matchers' sorted out-of-fold scores (`rank_reference.npz`).
"""

from __future__ import annotations

import argparse
import logging

import pandas as pd

from matching import config, metric, paths
from matching.errors import StageError
from matching.features.columns import KEYS
from matching.io import write_json, write_parquet
from matching.matchers.ensemble import combine, save_ensemble
from matching.matchers.names import ENSEMBLE
from matching.stage import run_stage

log = logging.getLogger(__name__)


def gather(layout: paths.Layout, matchers: list[str]) -> pd.DataFrame:
    """Out-of-fold scores of every matcher side by side, one column each."""
    oof = None
    for name in matchers:
        if not layout.oof_file(name).exists():
            raise StageError(f"{layout.oof_file(name)}: missing; train.matchers lists {name}, so run its stage first")
        part = pd.read_parquet(layout.oof_file(name))
        if oof is None:
            oof = part.drop(columns="score")
        elif not (part[KEYS + ["fold"]].to_numpy() == oof[KEYS + ["fold"]].to_numpy()).all():
            raise StageError(f"{layout.oof_file(name)}: rows or folds differ from {matchers[0]}'s; rerun `dvc repro`")
        oof[name] = part["score"].to_numpy()
    return oof


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params)
    matchers, method = list(cfg.train.matchers), cfg.ensemble.method
    oof = gather(layout, matchers)
    oof_score, fitted, reference = combine(oof, matchers, method)
    target, category = oof.target.to_numpy(), oof.category.to_numpy()
    singles = {name: metric.competition_metric(target, oof[name].to_numpy(), category) for name in matchers}
    best = max(singles, key=lambda name: singles[name])
    ensemble_metric = metric.competition_metric(target, oof_score, category)
    beats = bool(ensemble_metric > singles[best])
    # What `train.submit: auto` submits, saved with the ensemble so that every reader resolves it alike.
    fitted.update(best_single=best, beats_best_single=beats, auto_choice=ENSEMBLE if beats else best)
    save_ensemble(layout.model_dir(ENSEMBLE), fitted, reference)
    write_parquet(oof.drop(columns=matchers).assign(score=oof_score), layout.oof_file(ENSEMBLE))
    write_json(
        {
            "method": method,
            "matchers": matchers,
            "competition_metric": round(ensemble_metric, 6),
            "best_single": best,
            "best_single_metric": round(singles[best], 6),
            "beats_best_single": beats,
            "auto_choice": fitted["auto_choice"],
        },
        layout.ensemble_metrics,
    )
    log.info(
        f"ensemble ({method} of {', '.join(matchers)}): {ensemble_metric:.4f} against {best}'s {singles[best]:.4f}; "
        f"auto submits {fitted['auto_choice']}"
    )


if __name__ == "__main__":
    run_stage(main)
