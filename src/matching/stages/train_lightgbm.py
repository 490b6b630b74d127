"""Stage `train@lightgbm`: LightGBM cross-fitted on the pair features (`matching.matchers.lightgbm`)."""

from __future__ import annotations

import contextlib
import dataclasses

from dvclive.lgbm import DVCLiveCallback

from matching.features.columns import feature_columns
from matching.io import write_csv
from matching.matchers import lightgbm
from matching.matchers.crossfit import Timer, curve_frame
from matching.matchers.names import LIGHTGBM
from matching.stage import run_stage
from matching.stages.training import TrainingInputs, fold_log, run_matcher

NAME = LIGHTGBM
CURVE_DIGITS = 10  # decimals of a logged learning-curve value


def train(inputs: TrainingInputs) -> str:
    settings, layout = inputs.cfg.lightgbm, inputs.layout
    with contextlib.ExitStack() as logs, Timer() as timer:

        def dvclive_callback(fold: int) -> list:
            """dvclive's callback, every CURVE_EVERY iterations (each one cost 20 % more time), at the
            iteration's step, a folder a fold."""
            live = logs.enter_context(fold_log(layout, NAME, fold))
            callback = DVCLiveCallback(live=live)

            def every_few(env) -> None:
                if env.iteration % lightgbm.CURVE_EVERY == 0:
                    live.step = env.iteration
                    # LightGBM sums a metric over threads in their order: the last bits follow the thread count
                    results = [(*r[:2], round(r[2], CURVE_DIGITS), *r[3:]) for r in env.evaluation_result_list]
                    callback(dataclasses.replace(env, evaluation_result_list=results))

            return [every_few]

        oof, models, scoring, curves = lightgbm.train_lightgbm(
            inputs.train,
            feature_columns(inputs.train),
            inputs.fold,
            inputs.inner,
            settings,
            inputs.cfg.seed,
            dvclive_callback,
        )
    lightgbm.save_models(scoring, layout.model_dir(NAME))
    inputs.write_scores(NAME, oof)
    importance = lightgbm.importance_table(models).head(lightgbm.TOP_FEATURES)
    write_csv(importance, layout.importance_table(NAME))
    write_csv(curve_frame(curves), layout.curves_table(NAME))
    refit = "; new pairs are scored by a refit on all train pairs" if settings.refit_full else ""
    return (
        f"{len(models)} folds in {timer.seconds:.1f} s, best iterations "
        f"{[m.booster.best_iteration for m in models]}, category boosters {[len(m.by_category) for m in models]}"
        + refit
    )


def main(argv: list[str] | None = None) -> None:
    run_matcher(NAME, train, argv)


if __name__ == "__main__":
    run_stage(main)
