"""Matcher `siamese`: one shared tower over each product's modality vectors, contrastive loss.

Matching products are pulled together, others pushed at least `margin` apart; the score is
exp(-distance), a monotone function of the distance between the two towers' outputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from matching.config import SiameseNetwork
from matching.matchers.crossfit import InnerSplit
from matching.matchers.fitting import FoldRows, fit_network, set_determinism
from matching.matchers.networks import (
    ProductBlocks,
    ProductTower,
    fit_inputs,
    pair_tensors,
    score_in_chunks,
)


class Siamese(nn.Module):
    def __init__(self, widths: list[int], hidden: int, out_dim: int, dropout: float):
        super().__init__()
        self.tower = ProductTower(widths, hidden, out_dim, dropout)

    def distance(self, values1, mask1, values2, mask2) -> torch.Tensor:
        return torch.linalg.vector_norm(self.tower(values1, mask1) - self.tower(values2, mask2), dim=1)


def contrastive_loss(distance: torch.Tensor, target: torch.Tensor, margin: float) -> torch.Tensor:
    return (target * distance**2 + (1 - target) * torch.relu(margin - distance) ** 2).mean()


def build(architecture: dict) -> Siamese:
    return Siamese(architecture["widths"], architecture["hidden"], architecture["out_dim"], architecture["dropout"])


def pair_scorer(model: Siamese, blocks: ProductBlocks, pairs: pd.DataFrame, device: torch.device):
    """Scores for rows of `pairs`, by batches of row numbers."""
    values, mask, left, right = pair_tensors(blocks, pairs, device)

    def distance(rows: np.ndarray) -> torch.Tensor:
        a, b = left[rows], right[rows]
        return model.distance(values[a], mask[a], values[b], mask[b])

    def score(rows: np.ndarray) -> np.ndarray:
        return score_in_chunks(lambda batch: torch.exp(-distance(batch)), rows)

    return distance, score


def fit_siamese(
    blocks: ProductBlocks, pairs: pd.DataFrame, settings: SiameseNetwork, seed: int, inner: InnerSplit, curves: list
):
    device, target, target_tensor, architecture = fit_inputs(blocks, pairs, settings)

    def fit_predict(train: np.ndarray, valid: np.ndarray, fold: int):
        set_determinism(seed + fold)
        model = build(architecture).to(device)
        distance, score = pair_scorer(model, blocks, pairs, device)

        def batch_loss(rows: np.ndarray) -> torch.Tensor:
            return contrastive_loss(distance(rows), target_tensor[rows], settings.margin)

        rows = FoldRows(train, valid, fold, inner, target)
        return fit_network(model, batch_loss, score, rows, settings, seed + fold, curves)

    return fit_predict, architecture
