"""Torch pieces shared by the siamese and the pairwise matcher.

A product is its modality vectors (name, description, attributes, main photo, pooled extra
photos), each scaled to unit mean norm. A missing vector is zeros *and* a mask bit that the
tower sees, so the network knows it is missing rather than reading zeros as a value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from matching import THREADS, threads_for
from matching.config import Network
from matching.data.ids import distinct_ids, positions
from matching.matchers.fitting import device_of

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
        ids = distinct_ids(np.concatenate(id_arrays))
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
