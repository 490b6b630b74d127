"""Matcher `pairwise`: a classifier network over both products and the pair features.

Each product goes through a shared tower; the head sees u, v, |u - v|, u * v and the pair
features (standardised on the fold's train rows, NaN as 0 plus a flag), trained with
cross-entropy. Scores average both orders of the pair, so (a, b) and (b, a) score the same.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn

from matching.config import Network
from matching.features.columns import FeatureMatrix
from matching.matchers.crossfit import InnerSplit
from matching.matchers.fitting import FoldRows, fit_network, set_determinism
from matching.matchers.networks import (
    ProductBlocks,
    ProductTower,
    fit_inputs,
    pair_tensors,
    score_in_chunks,
)


class PairClassifier(nn.Module):
    feature_mean: torch.Tensor  # buffers (register_buffer), typed for the checker
    feature_std: torch.Tensor

    def __init__(self, widths: list[int], n_features: int, hidden: int, out_dim: int, dropout: float):
        super().__init__()
        self.tower = ProductTower(widths, hidden, out_dim, dropout)
        self.head = nn.Sequential(
            nn.Linear(4 * out_dim + 2 * n_features, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 2),
            nn.ReLU(),
            nn.Linear(hidden // 2, 1),
        )
        # Saved with the weights, so a loaded model standardises exactly as in training.
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))

    def fit_feature_scaling(self, features: np.ndarray, rows: np.ndarray, columns_at_once: int = 16) -> None:
        """Mean and standard deviation of each feature over `rows`, a few columns at a time: nanstd's
        temporaries over all columns of a million rows took the stage past 8 GiB."""
        stats = []
        with warnings.catch_warnings():  # a feature may be NaN on every train row of a fold
            warnings.simplefilter("ignore", RuntimeWarning)
            for first in range(0, features.shape[1], columns_at_once):
                block = features[rows, first : first + columns_at_once]
                stats.append((np.nanmean(block, axis=0), np.nanstd(block, axis=0)))
        mean = np.concatenate([m for m, _ in stats]) if stats else np.zeros(0, np.float32)
        std = np.concatenate([s for _, s in stats]) if stats else np.zeros(0, np.float32)
        self.feature_mean.copy_(torch.from_numpy(np.nan_to_num(mean).astype(np.float32)))
        self.feature_std.copy_(
            torch.from_numpy(np.where(np.nan_to_num(std) > 0, np.nan_to_num(std), 1.0).astype(np.float32))
        )

    def logit(self, values1, mask1, values2, mask2, features: torch.Tensor) -> torch.Tensor:
        u, v = self.tower(values1, mask1), self.tower(values2, mask2)
        missing = torch.isnan(features)
        scaled = torch.where(missing, torch.zeros_like(features), (features - self.feature_mean) / self.feature_std)
        return self.head(torch.cat([u, v, (u - v).abs(), u * v, scaled, missing.float()], dim=1)).squeeze(1)


def build(architecture: dict) -> PairClassifier:
    return PairClassifier(
        architecture["widths"],
        architecture["n_features"],
        architecture["hidden"],
        architecture["out_dim"],
        architecture["dropout"],
    )


def feature_matrix(pairs: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The float32 matrix of `columns` (a saved model's features, by name) of a pair feature frame."""
    return pairs[columns].to_numpy(np.float32, copy=True)


def pair_scorer(
    model: PairClassifier, blocks: ProductBlocks, pairs: pd.DataFrame, device: torch.device, features: np.ndarray
):
    """Logits and scores for rows of `pairs`, whose feature matrix (float32, a row a pair) is `features`."""
    values, mask, left, right = pair_tensors(blocks, pairs, device)
    feature_rows = torch.from_numpy(features).to(device)

    def logit(rows: np.ndarray, swap: bool = False) -> torch.Tensor:
        a, b = (right[rows], left[rows]) if swap else (left[rows], right[rows])
        return model.logit(values[a], mask[a], values[b], mask[b], feature_rows[rows])

    def score(rows: np.ndarray) -> np.ndarray:
        return score_in_chunks(
            lambda batch: (torch.sigmoid(logit(batch)) + torch.sigmoid(logit(batch, True))) / 2, rows
        )

    return logit, score


def fit_pairwise(
    blocks: ProductBlocks,
    pairs: pd.DataFrame,
    settings: Network,
    seed: int,
    inner: InnerSplit,
    curves: list,
    pair_features: FeatureMatrix,
):
    """Cross-fitting of the network on `pairs` (keys and target) and their `pair_features`, row by row."""
    device, target, target_tensor, architecture = fit_inputs(blocks, pairs, settings)
    features = pair_features.values
    architecture["n_features"] = features.shape[1]
    architecture["features"] = pair_features.columns  # scoring takes the columns by name
    loss_fn = nn.BCEWithLogitsLoss()

    def fit_predict(train: np.ndarray, valid: np.ndarray, fold: int):
        set_determinism(seed + fold)
        model = build(architecture)
        model.fit_feature_scaling(features, train)
        model = model.to(device)
        logit, score = pair_scorer(model, blocks, pairs, device, features)
        flips = np.random.default_rng(seed + fold)

        def batch_loss(rows: np.ndarray) -> torch.Tensor:
            swap = bool(flips.random() < 0.5)  # the head must not learn which side is which
            return loss_fn(logit(rows, swap), target_tensor[rows])

        rows = FoldRows(train, valid, fold, inner, target)
        return fit_network(model, batch_loss, score, rows, settings, seed + fold, curves)

    return fit_predict, architecture
