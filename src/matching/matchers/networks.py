"""Torch pieces shared by the siamese and the pairwise matcher.

A product is its modality vectors (name, description, attributes, main photo, pooled extra
photos), each scaled to unit mean norm. A missing vector is zeros *and* a mask bit that the
tower sees, so the network knows it is missing rather than reading zeros as a value.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from matching import metric
from matching.config import Network, resolve_device
from matching.data.ids import positions
from matching.io import atomic_path, write_json
from matching.matchers.crossfit import InnerSplit


@dataclass
class ProductBlocks:
    """All products' modality vectors as one matrix; the last row stands for an unknown product."""

    ids: np.ndarray  # sorted variantids
    values: np.ndarray  # (n + 1, total width) float32, missing -> 0
    mask: np.ndarray  # (n + 1, blocks) float32, 1 where the block is present
    widths: list[int]

    def rows(self, ids: np.ndarray) -> np.ndarray:
        found = positions(self.ids, ids)
        return np.where(found >= 0, found, len(self.ids))


def product_blocks(
    embeddings: Mapping[str, Mapping[str, np.ndarray]],
    shapes: Mapping[str, Mapping[str, tuple[int, ...]]] | None = None,
) -> ProductBlocks:
    """Stack every vector-valued embedding of every modality, aligned on variantid.

    With `shapes` (from the files' headers) the matrix is allocated once and each embedding is read
    only while it is copied in: `embeddings` may be lazy `np.load` archives, so the full-size
    product matrix (2.25 M x 576 floats, 5.2 GB) never sits beside the files' copies of it."""
    ids = np.unique(np.concatenate([embeddings[m]["variantid"] for m in sorted(embeddings)]))
    if shapes is None:
        shapes = {m: {k: embeddings[m][k].shape for k in embeddings[m]} for m in embeddings}
    layout = [
        (m, name, shape[1])
        for m in sorted(embeddings)
        for name, shape in sorted(shapes[m].items())
        if name != "variantid" and len(shape) == 2
    ]
    values = np.zeros((len(ids) + 1, sum(width for _, _, width in layout)), dtype=np.float32)
    mask = np.zeros((len(ids) + 1, len(layout)), dtype=np.float32)
    start = 0
    for index, (modality, name, width) in enumerate(layout):
        rows = np.searchsorted(ids, embeddings[modality]["variantid"])
        matrix = embeddings[modality][name]
        ok = ~np.isnan(matrix).any(axis=1)
        norm = float(np.linalg.norm(matrix[ok], axis=1).mean()) if ok.any() else 1.0
        values[rows[ok], start : start + width] = matrix[ok] / (norm if norm > 0 else 1.0)
        mask[rows[ok], index] = 1.0
        start += width
        del matrix
    return ProductBlocks(ids, values, mask, [width for _, _, width in layout])


def pair_tensors(blocks: ProductBlocks, pairs: pd.DataFrame, device: torch.device):
    """The product matrix, its mask, and each pair's two product rows, on `device`."""
    values = torch.from_numpy(blocks.values).to(device)
    mask = torch.from_numpy(blocks.mask).to(device)
    left = torch.from_numpy(blocks.rows(pairs.variantid1.to_numpy())).to(device)
    right = torch.from_numpy(blocks.rows(pairs.variantid2.to_numpy())).to(device)
    return values, mask, left, right


def score_in_chunks(
    score_rows: Callable[[np.ndarray], torch.Tensor], rows: np.ndarray, chunk: int = 8192
) -> np.ndarray:
    parts = [score_rows(rows[start : start + chunk]).cpu().numpy() for start in range(0, len(rows), chunk)]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)


class ProductTower(nn.Module):
    """One small layer per modality block, masked, then a shared head."""

    def __init__(self, widths: list[int], hidden: int, out_dim: int, dropout: float):
        super().__init__()
        self.widths = list(widths)
        self.blocks = nn.ModuleList(nn.Linear(w, hidden) for w in widths)
        self.head = nn.Sequential(
            nn.Linear(hidden * len(widths) + len(widths), hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        parts, start = [], 0
        for index, (layer, width) in enumerate(zip(self.blocks, self.widths)):
            parts.append(torch.relu(layer(values[:, start : start + width])) * mask[:, index : index + 1])
            start += width
        return self.head(torch.cat(parts + [mask], dim=1))


def set_determinism(seed: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def device_of(settings: Network) -> torch.device:
    return torch.device(resolve_device(settings.device))


def fit_inputs(blocks: ProductBlocks, pairs: pd.DataFrame, settings: Network) -> tuple:
    """What a network's fit needs beside its own layers: the device, the targets (as numpy and on the
    device) and the architecture entries every network shares."""
    device = device_of(settings)
    target = pairs["target"].to_numpy().astype(np.float32)
    architecture = {
        "widths": blocks.widths,
        "hidden": settings.hidden,
        "out_dim": settings.out_dim,
        "dropout": settings.dropout,
    }
    return device, target, torch.from_numpy(target).to(device), architecture


def fit_network(
    model: nn.Module,
    batch_loss: Callable[[np.ndarray], torch.Tensor],
    predict: Callable[[np.ndarray], np.ndarray],
    train: np.ndarray,
    valid: np.ndarray,
    fold: int,
    inner: InnerSplit,
    target: np.ndarray,
    settings: Network,
    seed: int,
    curves: list,
) -> tuple[np.ndarray, nn.Module]:
    """Adam on the fold's train rows less an inner split; the epoch with the best PR-AUC on that split
    is kept (early stopping never reads the fold it scores). A fold's `fit_predict` result: the held-out
    fold's scores by the kept weights, and the model holding them (on the CPU); the learning curve
    goes to `curves`.
    """
    fit, stop = inner(train, fold)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    rng = np.random.default_rng(seed)
    best, best_state, waited, curve = -1.0, None, 0, []
    for epoch in range(1, settings.max_epochs + 1):
        model.train()
        order = rng.permutation(fit)
        losses = []
        for start in range(0, len(order), settings.batch_size):
            optimizer.zero_grad()
            loss = batch_loss(order[start : start + settings.batch_size])
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        model.eval()
        with torch.inference_mode():
            pr_auc = metric.pr_auc(target[stop], predict(stop))
        curve.append({"epoch": epoch, "train_loss": round(float(np.mean(losses)), 6), "valid_pr_auc": round(pr_auc, 6)})
        if pr_auc > best:
            best, best_state, waited = pr_auc, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= settings.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    with torch.inference_mode():
        scores = predict(valid)
    curves.append(curve)
    return scores, model.cpu()


def save_fold_models(models: list[nn.Module], architecture: dict, model_dir: Path) -> None:
    """Weights as safetensors (tensors only, the same bytes for the same weights), the architecture as JSON."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for stale in model_dir.glob("fold_*.safetensors"):
        stale.unlink()
    for number, model in enumerate(models):
        with atomic_path(model_dir / f"fold_{number}.safetensors") as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    write_json(architecture, model_dir / "architecture.json")


def load_fold_models(model_dir: Path, build: Callable[[dict], nn.Module]) -> list[nn.Module]:
    architecture = json.loads((model_dir / "architecture.json").read_text())
    models = []
    for path in sorted(model_dir.glob("fold_*.safetensors")):
        model = build(architecture)
        model.load_state_dict(load_file(str(path), device="cpu"))
        models.append(model.eval())
    if not models:
        raise FileNotFoundError(f"{model_dir}: no fold_*.safetensors weights; run the matcher's train stage first")
    return models
