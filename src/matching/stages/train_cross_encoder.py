"""Stage `train@cross_encoder`: a transformer fine-tuned on both cards of a pair (`matching.matchers.cross_encoder`).

Optional, like LightAutoML: add it to `train.matchers`. The cards come from the prepared products;
the attribute keys are ranked on the train pairs' products. `predict` scores the test pairs with the
saved fold models, as it does the other matchers'.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from matching.data.ids import distinct_ids
from matching.features.columns import KEYS
from matching.io import write_csv
from matching.matchers import cross_encoder
from matching.matchers.cross_encoding import batching, pretrained, serialising
from matching.matchers.crossfit import Timer, cross_fit, curve_frame
from matching.matchers.names import CROSS_ENCODER
from matching.stage import run_stage
from matching.stages.training import TrainingInputs, log_curves, run_matcher

NAME = CROSS_ENCODER


def train(inputs: TrainingInputs) -> str:
    settings, layout = inputs.cfg.cross_encoder, inputs.layout
    # `auto` read once from the model's files, not again for each fold's fresh copy of the model
    settings = replace(settings, pooling=pretrained.model_pooling(settings.model, settings.pooling))
    products = pd.read_parquet(layout.products, columns=serialising.CARD_COLUMNS)
    products = products[products.variantid.isin(distinct_ids(inputs.train[KEYS].to_numpy()))]
    serialisation = cross_encoder.serialisation_of(settings, serialising.key_order(products.attributes))
    cards = serialising.card_texts(
        products, serialisation["keys"], settings.attribute_count, settings.description_chars
    )
    tokenizer = pretrained.pretrained_tokenizer(settings.model)
    reader = batching.pair_reader(tokenizer, inputs.train, products.variantid.to_numpy(np.int64), cards, serialisation)
    curves: list = []
    fit_predict = cross_encoder.fit_cross_encoder(
        reader, inputs.train.target.to_numpy(), settings, inputs.cfg.seed, inputs.inner, curves
    )
    with Timer() as timer:
        oof, models = cross_fit(inputs.fold, fit_predict)
    cross_encoder.save(models, tokenizer, serialisation, layout.model_dir(NAME))
    inputs.write_scores(NAME, oof)
    log_curves(layout, NAME, curves)
    write_csv(curve_frame(curves), layout.curves_table(NAME))
    return f"{len(models)} folds in {timer.seconds:.1f} s, epochs {[c[-1]['epoch'] for c in curves]}"


def main(argv: list[str] | None = None) -> None:
    run_matcher(NAME, train, argv, features="none")


if __name__ == "__main__":
    run_stage(main)
