"""What the network matchers' train stages share: the product matrix read from the embedding files,
cross-fitting, safetensors weights (with the block norms new products are scaled by), learning curves."""

from __future__ import annotations

from collections.abc import Callable

from matching import paths
from matching.config import Network
from matching.encoders.modalities import MODALITIES
from matching.io import write_csv
from matching.matchers import fitting, networks
from matching.matchers.crossfit import Timer, cross_fit, curve_frame
from matching.npz import StoredArrays
from matching.stages.training import TrainingInputs, log_curves


def load_product_blocks(layout: paths.Layout) -> networks.ProductBlocks:
    """Every product's modality vectors, read one embedding at a time into one preallocated matrix."""
    return networks.product_blocks({m: StoredArrays(layout.embedding_file(m)) for m in MODALITIES})


def train_network(name: str, fit: Callable, settings: Network, inputs: TrainingInputs) -> str:
    layout = inputs.layout
    blocks = load_product_blocks(layout)
    curves: list = []
    fit_predict, architecture = fit(blocks, inputs.train, settings, inputs.cfg.seed, inputs.inner, curves)
    with Timer() as timer:
        oof, models = cross_fit(inputs.fold, fit_predict)
    fitting.save_fold_models(models, architecture, layout.model_dir(name))
    inputs.write_scores(name, oof)
    log_curves(layout, name, curves)
    write_csv(curve_frame(curves), layout.curves_table(name))
    return f"{len(models)} folds in {timer.seconds:.1f} s, epochs {[c[-1]['epoch'] for c in curves]}"
