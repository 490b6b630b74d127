"""Matcher `cross_encoder`: a pretrained transformer fine-tuned on both cards of a pair in one sequence.

A pair is read as the model's own pair input (`[CLS] card a [SEP] card b [SEP]` for BERT), each card
serialised by `card_texts`: its name, then up to `attribute_count` attributes as `key: values`, the
keys that most training products fill first, then the first `description_chars` characters of its
cleaned description. One logit on the pretrained encoder (a new head, `pooling`: the model's own
classification head on [CLS], or one on the mean of the pair's tokens), cross-entropy, AdamW with a
linear warm-up and decay; each fold's model stops early on the inner split of its train rows, never
on the fold it scores (`fitting.fit_network`). Half of each batch is shown swapped and a score is
the mean of both orders, so (a, b) and (b, a) score the same. Weights are saved per fold as
safetensors beside the model's config, its tokenizer and the serialisation (`architecture.json`);
`SavedCrossEncoder` loads them to score new pairs, as `predict` and `matching-score` do.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn import functional

from matching.config import CrossEncoder
from matching.data.ids import distinct_ids
from matching.features.columns import KEYS
from matching.matchers.cross_encoding.batching import PairReader, length_grouped, on_device, pair_reader
from matching.matchers.cross_encoding.pretrained import (
    classifier_from_config,
    model_pooling,
    pretrained_classifier,
    pretrained_tokenizer,
)
from matching.matchers.cross_encoding.serialising import card_texts
from matching.matchers.crossfit import FitPredict, InnerSplit
from matching.matchers.fitting import (
    FitOptions,
    FoldRows,
    device_of,
    fit_network,
    load_fold_models,
    save_fold_models,
    set_determinism,
)

log = logging.getLogger(__name__)


def serialisation_of(settings: CrossEncoder, keys: list[str]) -> dict:
    """How cards are written and read: saved with the weights, so new pairs are read as the training pairs were
    (the pooling as resolved: saved weights load into a classifier pooled that way)."""
    names = ("model", "attribute_count", "description_chars", "max_length", "batch_size", "precision")
    pooling = model_pooling(settings.model, settings.pooling)
    return {"keys": keys, "pooling": pooling, **{name: getattr(settings, name) for name in names}}


def fit_cross_encoder(
    train_pairs: PairReader,
    target: np.ndarray,
    settings: CrossEncoder,
    seed: int,
    inner: InnerSplit,
    curves: list,
) -> FitPredict:
    """`fit_predict` for `cross_fit`: a fresh copy of the pretrained model fine-tuned on the fold's
    train rows, the fold's scores and the model (on the CPU) returned."""
    device = device_of(settings)
    target32 = np.asarray(target, np.float32)
    lengths = train_pairs.cards.pair_lengths(train_pairs.left, train_pairs.right)  # either order: the same

    def fit_predict(train: np.ndarray, valid: np.ndarray, fold: int):
        set_determinism(seed + fold)
        model = pretrained_classifier(settings.model, settings.freeze_word_embeddings, settings.pooling).to(device)
        order_rng, batch_rng = np.random.default_rng([seed, fold]), np.random.default_rng([seed, fold, 1])

        def batch_loss(rows: np.ndarray) -> torch.Tensor:
            swapped = order_rng.random(len(rows)) < 0.5
            logits = train_pairs.logits(model, rows, swapped)
            return functional.binary_cross_entropy_with_logits(
                logits, on_device(torch.from_numpy(target32[rows]), device)
            )

        scores, model = fit_network(
            model,
            batch_loss,
            lambda rows: train_pairs.scores(model, rows),
            FoldRows(train, valid, fold, inner, target),
            settings,
            seed,
            curves,
            FitOptions(
                optimizer_class=torch.optim.AdamW,
                warmup_share=settings.warmup_share,
                host_rows=True,
                arrange=(lambda order: length_grouped(order, lengths, settings.batch_size, batch_rng))
                if settings.group_by_length
                else None,
            ),
        )
        return scores, model

    return fit_predict


def save(models: list[Any], tokenizer, serialisation: dict, model_dir: Path) -> None:
    """Each fold's weights as safetensors, the model's config and tokenizer (so that they load without
    the hub) and the serialisation (`architecture.json`)."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    save_fold_models(models, serialisation, model_dir)
    models[0].config.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)


@dataclass
class SavedCrossEncoder:
    """The fold models of a trained cross-encoder, scoring pairs of products' cards."""

    folds: list[torch.nn.Module]
    tokenizer: object
    serialisation: dict

    @classmethod
    def load(cls, model_dir: Path) -> SavedCrossEncoder:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model_dir)
        folds = load_fold_models(model_dir, lambda saved: classifier_from_config(config, saved["pooling"]))
        serialisation = json.loads((model_dir / "architecture.json").read_text())
        return cls(folds, pretrained_tokenizer(str(model_dir)), serialisation)

    def fold_scores(self, pairs: pd.DataFrame, products: pd.DataFrame, device: torch.device) -> list[np.ndarray]:
        """Each fold model's score of each pair (KEYS); `products` hold at least the pairs' products."""
        wanted = products[products.variantid.isin(distinct_ids(pairs[KEYS].to_numpy()))].sort_values("variantid")
        saved = self.serialisation
        cards = card_texts(wanted, saved["keys"], saved["attribute_count"], saved["description_chars"])
        reader = pair_reader(self.tokenizer, pairs, wanted.variantid.to_numpy(np.int64), cards, saved)
        return [reader.scores(model.to(device)) for model in self.folds]
