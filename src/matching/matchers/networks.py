"""Torch pieces shared by the siamese and the pairwise matcher.

A product is its modality vectors (name, description, attributes, main photo, pooled extra
photos), each scaled to unit mean norm. A missing vector is zeros *and* a mask bit that the
tower sees, so the network knows it is missing rather than reading zeros as a value.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from matching import THREADS, metric, threads_for
from matching.config import Fitting, Network, resolve_device
from matching.data.ids import positions
from matching.io import atomic_path, write_json
from matching.matchers.crossfit import InnerSplit

torch.set_num_threads(THREADS)
log = logging.getLogger(__name__)


CHUNK_ROWS = 1 << 18


@dataclass
class ProductBlocks:
    """All products' modality vectors as one matrix; the last row stands for an unknown product."""

    ids: np.ndarray  # sorted variantids
    values: np.ndarray  # (n + 1, total width) float32, missing -> 0
    mask: np.ndarray  # (n + 1, blocks) float32, 1 where the block is present
    widths: list[int]
    norms: list[float]  # each block's divisor: the mean norm of its vectors over the products it was fitted on

    def rows(self, ids: np.ndarray) -> np.ndarray:
        found = positions(self.ids, ids)
        return np.where(found >= 0, found, len(self.ids))


def product_blocks(
    embeddings: Mapping[str, Mapping[str, np.ndarray]], norms: list[float] | None = None
) -> ProductBlocks:
    """Stack every vector-valued embedding of every modality, aligned on variantid, each block divided
    by its mean vector norm over these products, or by `norms` (saved with a trained network, so that
    new products are scaled as the training products were).

    The matrix is allocated once and each embedding is read only while it is copied in: `embeddings`
    may be memory-mapped files (`io.StoredArrays`), so the full-size product matrix (2.25 M x 576
    floats, 5.2 GB) never sits beside a copy of the files."""
    id_arrays = [np.asarray(embeddings[m]["variantid"]) for m in sorted(embeddings)]
    same_ids = all(np.array_equal(id_arrays[0], other) for other in id_arrays[1:])
    if same_ids and len(id_arrays[0]) and bool(np.all(id_arrays[0][1:] > id_arrays[0][:-1])):
        ids = id_arrays[0]  # every embed stage writes the products in one sorted order: no union to sort
    else:
        ids = np.unique(np.concatenate(id_arrays))
    shapes = {m: {k: embeddings[m][k].shape for k in embeddings[m]} for m in embeddings}
    layout = [
        (m, name, shape[1])
        for m in sorted(embeddings)
        for name, shape in sorted(shapes[m].items())
        if name != "variantid" and len(shape) == 2
    ]
    if norms is not None and len(norms) != len(layout):
        raise ValueError(f"{len(norms)} saved block norms for {len(layout)} embedding blocks; retrain the networks")
    values = np.zeros((len(ids) + 1, sum(width for _, _, width in layout)), dtype=np.float32)
    mask = np.zeros((len(ids) + 1, len(layout)), dtype=np.float32)
    start, used_norms = 0, []
    for index, (modality, name, width) in enumerate(layout):
        rows = np.searchsorted(ids, embeddings[modality]["variantid"])
        in_order = len(rows) == len(ids) and bool(np.array_equal(rows, np.arange(len(ids))))
        matrix = embeddings[modality][name]
        columns = slice(start, start + width)
        # One read of the matrix, by chunks of rows (whole-matrix temporaries took the stage from 6.6 to
        # 9.7 GiB): rows copied unscaled, NaN rows left at zero, then the block scaled in place.
        norm_sum, present = 0.0, 0
        for first in range(0, len(matrix), CHUNK_ROWS):
            chunk = slice(first, first + CHUNK_ROWS)
            block = np.asarray(matrix[chunk], dtype=np.float32)
            ok = np.asarray(~np.isnan(block).any(axis=1))
            norm_sum += float(np.linalg.norm(block[ok], axis=1).sum())
            present += int(ok.sum())
            if in_order:  # one strided copy that leaves NaN rows at zero (a scatter of rows costs several times more)
                np.copyto(values[first : first + len(block), columns], block, where=ok[:, None])
            else:
                values[rows[chunk][ok], columns] = block[ok]
            mask[rows[chunk][ok], index] = 1.0
        norm = norm_sum / present if present and norm_sum > 0 else 1.0
        norm = norms[index] if norms is not None else norm
        used_norms.append(norm)
        for first in range(0, len(values), CHUNK_ROWS):
            values[first : first + CHUNK_ROWS, columns] /= norm
        start += width
        del matrix
    return ProductBlocks(ids, values, mask, [width for _, _, width in layout], used_norms)


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


def device_of(settings: Fitting) -> torch.device:
    return torch.device(resolve_device(settings.device))


def fit_inputs(blocks: ProductBlocks, pairs: pd.DataFrame, settings: Network) -> tuple:
    """What a network's fit needs beside its own layers: the device, the targets (as numpy and on the
    device) and the architecture entries every network shares. Sets torch's threads for this many pairs."""
    device = device_of(settings)
    torch.set_num_threads(threads_for(len(pairs)))
    target = pairs["target"].to_numpy().astype(np.float32)
    architecture = {
        "widths": blocks.widths,
        "norms": blocks.norms,
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
    settings: Fitting,
    seed: int,
    curves: list,
    optimizer_class: Callable[..., torch.optim.Optimizer] = torch.optim.Adam,
    warmup_share: float | None = None,
    host_rows: bool = False,
    arrange: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, nn.Module]:
    """Adam on the fold's train rows less an inner split; the weights with the best PR-AUC on that split
    are kept (early stopping never reads the fold it scores). The split is read after every
    `validate_every` train pairs (each epoch cut in equal parts; one per epoch when it is smaller), and
    `patience` reads without a PR-AUC better by `min_delta` stop the fit: at full volume one epoch holds hundreds of
    thousands of pairs, and whole epochs of patience would cost more than the fit. A fold's `fit_predict`
    result: the held-out fold's scores by the kept weights, and the model holding them (on the CPU); the
    learning curve goes to `curves`. A fine-tuned transformer takes AdamW (`optimizer_class`) and a
    step that rises linearly over `warmup_share` of the steps of `max_epochs`, then falls to 0.
    `batch_loss` takes the batch's rows on the model's device, or as a numpy array with `host_rows`
    (a matcher that assembles its batches on the host); `arrange` reorders an epoch's shuffled host rows
    (the same rows; a partial batch last) before they are cut into batches.
    """
    fit, stop = inner(train, fold)
    optimizer = optimizer_class(trained_weights(model), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device
    steps = -(-len(fit) // settings.batch_size)
    schedule = None if warmup_share is None else linear_warmup(optimizer, warmup_share, steps * settings.max_epochs)
    parts = min(steps, -(-len(fit) // settings.validate_every))
    best, reference, best_state, waited, curve = -1.0, -1.0, None, 0, []
    start = time.perf_counter()
    for epoch in range(settings.max_epochs):
        # The epoch's order goes to the device once (it stays on the host with `host_rows`); batches are
        # slices of it, and the loss is summed there, so a step neither copies rows from the host nor
        # waits for the device (reading rows back from it would wait for the steps queued before).
        order: Any = rng.permutation(fit) if host_rows else torch.from_numpy(rng.permutation(fit)).to(device)
        if arrange is not None:
            order = arrange(order)
        for part in range(parts):
            model.train()
            loss_sum, part_steps = (
                torch.zeros((), device=device),
                range(part * steps // parts, (part + 1) * steps // parts),
            )
            for step in part_steps:
                optimizer.zero_grad()
                loss = batch_loss(order[step * settings.batch_size : (step + 1) * settings.batch_size])
                loss.backward()
                optimizer.step()
                if schedule is not None:
                    schedule.step()
                loss_sum += loss.detach()
            model.eval()
            with torch.inference_mode():
                pr_auc = metric.pr_auc(target[stop], predict(stop))
            curve.append(
                {
                    "epoch": round(epoch + (part + 1) / parts, 4),
                    "train_loss": round(float(loss_sum) / len(part_steps), 6),
                    "valid_pr_auc": round(pr_auc, 6),
                }
            )
            # The best weights are kept; only a gain of more than `min_delta` over the PR-AUC that last
            # reset the patience resets it again, so a long slow creep does not hold the fit open.
            log.info(
                f"  fold {fold + 1} epoch {curve[-1]['epoch']:g}: train loss {curve[-1]['train_loss']:.4f}, "
                f"inner-split PR-AUC {pr_auc:.4f}, {time.perf_counter() - start:.1f} s"
            )
            if pr_auc > best:
                best, best_state = pr_auc, copy.deepcopy(model.state_dict())
            if pr_auc > reference + settings.min_delta:
                reference, waited = pr_auc, 0
            else:
                waited += 1
            if waited >= settings.patience:
                break
        if waited >= settings.patience:
            break
    if best_state is not None:  # else no read of the inner split was a number: the last weights stay
        model.load_state_dict(best_state)
    model.eval()
    with torch.inference_mode():
        scores = predict(valid)
    curves.append(curve)
    return scores, model.cpu()


def trained_weights(model: nn.Module) -> list[nn.Parameter]:
    """The weights an optimizer updates: those not frozen."""
    return [weights for weights in model.parameters() if weights.requires_grad]


def linear_warmup(optimizer: torch.optim.Optimizer, warmup_share: float, total_steps: int):
    """The step size rising from 0 over the first `warmup_share` of `total_steps`, then falling to 0 at the end."""
    warmup = max(1, int(warmup_share * total_steps))

    def factor(step: int) -> float:
        return step / warmup if step < warmup else max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


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
