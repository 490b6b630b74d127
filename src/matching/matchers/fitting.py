"""The training loop the torch matchers share (the networks over product vectors and the cross-encoder):
fold rows in, early stopping on the inner split, the kept weights out; and the fold models saved as
safetensors beside their architecture, loaded back without running code."""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from matching import metric
from matching.config import Fitting
from matching.device import resolve_device
from matching.errors import DataError
from matching.io import atomic_path, write_json
from matching.manifest import check_manifest, write_manifest
from matching.matchers.crossfit import InnerSplit, check_stopping_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoldRows:
    """A fold's rows: `train` is fitted (less the inner split `inner` takes from it for early stopping),
    `valid` is scored once the weights are fixed; `target` holds every row's label."""

    train: np.ndarray
    valid: np.ndarray
    fold: int
    inner: InnerSplit
    target: np.ndarray


@dataclass(frozen=True)
class FitOptions:
    """How the loop steps beyond the `Fitting` knobs. A fine-tuned transformer takes AdamW
    (`optimizer_class`) and a step that rises linearly over `warmup_share` of all steps, then falls to 0.
    `batch_loss` gets a batch's rows on the model's device, or as a numpy array with `host_rows` (a
    matcher that assembles its batches on the host); `arrange` reorders an epoch's shuffled host rows
    (the same rows; a partial batch last) before they are cut into batches."""

    optimizer_class: Callable[..., torch.optim.Optimizer] = torch.optim.Adam
    warmup_share: float | None = None
    host_rows: bool = False
    arrange: Callable[[np.ndarray], np.ndarray] | None = None


def set_determinism(seed: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def device_of(settings: Fitting) -> torch.device:
    return torch.device(resolve_device(settings.device))


def fit_network(
    model: nn.Module,
    batch_loss: Callable[[Any], torch.Tensor],
    predict: Callable[[np.ndarray], np.ndarray],
    rows: FoldRows,
    settings: Fitting,
    seed: int,
    curves: list,
    options: FitOptions = FitOptions(),
) -> tuple[np.ndarray, nn.Module]:
    """Adam on the fold's train rows less an inner split; the weights with the best PR-AUC on that split
    are kept (early stopping never reads the fold it scores). The split is read after every
    `validate_every` train pairs (each epoch cut in equal parts; one per epoch when it is smaller), and
    `patience` reads without a PR-AUC better by `min_delta` stop the fit: at full volume one epoch holds
    hundreds of thousands of pairs, and whole epochs of patience would cost more than the fit.

    `batch_loss` maps a batch's rows to its loss and `predict` rows to scores. Returns the held-out
    fold's scores by the kept weights and the model holding them (on the CPU); the learning curve goes
    to `curves`.
    """
    fit, stop = rows.inner(rows.train, rows.fold)
    target, fold = rows.target, rows.fold
    check_stopping_rows(target[stop], fold)
    optimizer = options.optimizer_class(
        trained_weights(model), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device
    steps = -(-len(fit) // settings.batch_size)
    schedule = (
        None
        if options.warmup_share is None
        else linear_warmup(optimizer, options.warmup_share, steps * settings.max_epochs)
    )
    parts = min(steps, -(-len(fit) // settings.validate_every))
    best, reference, best_state, waited, curve = -1.0, -1.0, None, 0, []
    start = time.perf_counter()
    for epoch in range(settings.max_epochs):
        # The epoch's order goes to the device once (it stays on the host with `host_rows`); batches are
        # slices of it, and the loss is summed there, so a step neither copies rows from the host nor
        # waits for the device (reading rows back from it would wait for the steps queued before).
        order: Any = rng.permutation(fit) if options.host_rows else torch.from_numpy(rng.permutation(fit)).to(device)
        if options.arrange is not None:
            order = options.arrange(order)
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
        scores = predict(rows.valid)
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
    write_manifest(model_dir, [*(f"fold_{number}.safetensors" for number in range(len(models))), "architecture.json"])


def load_fold_models(model_dir: Path, build: Callable[[dict], nn.Module]) -> list[nn.Module]:
    """Every fold model the manifest records (all of them, each as saved), built from the architecture."""
    stage = f"train@{model_dir.name}"
    if not (model_dir / "architecture.json").exists():
        raise FileNotFoundError(f"{model_dir}: no fold_*.safetensors weights; run the matcher's train stage first")
    names = check_manifest(model_dir, stage)
    architecture = json.loads((model_dir / "architecture.json").read_text())
    models = []
    for name in sorted(n for n in names if n.endswith(".safetensors")):
        model = build(architecture)
        try:
            model.load_state_dict(load_file(str(model_dir / name), device="cpu"))
        except RuntimeError as error:  # weights of another shape than architecture.json describes
            reason = str(error).splitlines()[0]
            raise DataError(
                f"{model_dir / name}: does not fit architecture.json ({reason}); rerun `dvc repro {stage}`"
            ) from None
        models.append(model.eval())
    if not models:
        raise FileNotFoundError(f"{model_dir}: no fold_*.safetensors weights; run the matcher's train stage first")
    return models
