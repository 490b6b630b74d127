"""Stage `train@lightgbm`: LightGBM cross-fitted on the pair features (`matching.matchers.lightgbm`)."""

from __future__ import annotations

from matching import figures
from matching.features.columns import feature_columns
from matching.io import run_stage, write_csv
from matching.matchers import lightgbm
from matching.matchers.crossfit import Timer, curve_frame
from matching.stages.training import TrainingInputs, run_matcher

NAME = "lightgbm"


def train(inputs: TrainingInputs) -> str:
    settings, layout = inputs.cfg.lightgbm, inputs.layout
    with Timer() as timer:
        oof, models, scoring, curves = lightgbm.train_lightgbm(
            inputs.train, feature_columns(inputs.train), inputs.fold, inputs.inner, settings, inputs.cfg.seed
        )
    lightgbm.save_models(scoring, layout.model_dir(NAME))
    inputs.write_scores(NAME, oof)
    importance = lightgbm.importance_table(models).head(figures.TOP_FEATURES)
    curve = curve_frame(curves)
    write_csv(importance, layout.importance_plot)
    write_csv(curve, layout.learning_curve_file(NAME))
    figures.save_figure(figures.importance(importance), layout.importance_plot.with_suffix(".png"))
    figures.save_figure(figures.learning_curves(curve, NAME), layout.learning_curve_file(NAME).with_suffix(".png"))
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
