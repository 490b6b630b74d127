"""What the network matchers' train stages share: the product matrix read from the embedding files,
cross-fitting, safetensors weights, test scores from the weights as saved, learning curves."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from matching import paths
from matching.io import StoredArrays, write_csv
from matching.matchers import networks
from matching.matchers.crossfit import Timer, cross_fit, curve_frame
from matching.stages.training import TrainingInputs


def load_product_blocks(layout: paths.Layout) -> networks.ProductBlocks:
    """Every product's modality vectors, read one embedding at a time into one preallocated matrix."""
    return networks.product_blocks({m: StoredArrays(layout.embedding_file(m)) for m in paths.MODALITIES})


def train_network(name: str, fit: Callable, build: Callable, pair_scorer: Callable, inputs: TrainingInputs) -> str:
    layout = inputs.layout
    blocks = load_product_blocks(layout)
    curves: list = []
    fit_predict, architecture = fit(
        blocks, inputs.train, getattr(inputs.cfg, name), inputs.cfg.seed, inputs.inner, curves
    )
    with Timer() as timer:
        oof, models = cross_fit(inputs.fold, fit_predict)
    networks.save_fold_models(models, architecture, layout.model_dir(name))
    # Test pairs are scored by the weights as saved, so a model that cannot be loaded fails here.
    rows = np.arange(len(inputs.test))
    with torch.inference_mode():
        test_scores = np.mean(
            [
                pair_scorer(m, blocks, inputs.test, torch.device("cpu"))[1](rows)
                for m in networks.load_fold_models(layout.model_dir(name), build)
            ],
            axis=0,
        )
    inputs.write_scores(name, oof, test_scores)
    write_csv(curve_frame(curves), layout.learning_curve_file(name))
    return f"{len(models)} folds in {timer.seconds:.1f} s, epochs {[c[-1]['epoch'] for c in curves]}"
