"""Matcher `cross_encoder`: a pretrained transformer fine-tuned on both cards of a pair in one sequence.

A pair is read as the model's own pair input (`[CLS] card a [SEP] card b [SEP]` for BERT), each card
serialised by `card_texts`: its name, then up to `attribute_count` attributes as `key: values`, the
keys that most training products fill first, then the first `description_chars` characters of its
cleaned description. One logit on the pretrained encoder (a new head), cross-entropy, AdamW with a
linear warm-up and decay; each fold's model stops early on the inner split of its train rows, never
on the fold it scores (`networks.fit_network`). Half of each batch is shown swapped and a score is
the mean of both orders, so (a, b) and (b, a) score the same. Weights are saved per fold as
safetensors beside the model's config, its tokenizer and the serialisation (`architecture.json`);
`SavedCrossEncoder` loads them to score new pairs, as `predict` and `matching-score` do.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn import functional

from matching.config import CrossEncoder
from matching.data.ids import positions
from matching.encoders.texts import clean_description, render_attributes
from matching.features.columns import KEYS
from matching.io import StageError
from matching.matchers.crossfit import FitPredict, InnerSplit
from matching.matchers.networks import device_of, fit_network, load_fold_models, save_fold_models, set_determinism

log = logging.getLogger(__name__)
SEPARATOR = " | "  # between a card's name, its attributes and its description
CARD_COLUMNS = ["variantid", "name", "attributes", "description"]  # of the products table


def key_order(attributes: pd.Series) -> list[str]:
    """Attribute keys by how many products fill them, most first (ties by name)."""
    counts = Counter(key for text in attributes.dropna() for key in json.loads(text))
    return sorted(counts, key=lambda key: (-counts[key], key))


def card_texts(products: pd.DataFrame, keys: list[str], attribute_count: int, description_chars: int) -> np.ndarray:
    """Each product's card as one string, in the rows' order: name | key: values; ... | description
    excerpt. A key outside `keys` ranks after them; a missing part is left out. 66 s for 2.25 million
    products on 2 cores (35 s cleaning descriptions, the rest a loop parsing each JSON dict): seconds
    beside the model's hours."""
    rank = {key: i for i, key in enumerate(keys)}
    descriptions = clean_description(products["description"]) if description_chars else None
    texts = []
    for row, (name, attributes) in enumerate(zip(products["name"], products["attributes"])):
        parts = [name] if isinstance(name, str) and name else []
        if attribute_count and isinstance(attributes, str):
            mapping = json.loads(attributes)
            chosen = sorted(mapping, key=lambda key: (rank.get(key, len(rank)), key))[:attribute_count]
            if chosen:
                parts.append(render_attributes(mapping, chosen))
        if descriptions is not None and descriptions.iat[row]:
            parts.append(descriptions.iat[row][:description_chars])
        texts.append(SEPARATOR.join(parts))
    return np.array(texts, dtype=object)


@contextmanager
def loading(model: str) -> Iterator[None]:
    """A model that cannot be loaded stops the stage with one line naming it."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()  # "newly initialised head" is the point of fine-tuning
    transformers_logging.disable_progress_bar()
    try:
        yield
    except OSError as error:
        raise StageError(
            f"params.yaml: cross_encoder.model is {model!r}, which cannot be loaded ({str(error).splitlines()[0]}); "
            "name a hub model (with a network) or a local folder holding config.json, weights and tokenizer"
        ) from None


def pretrained_tokenizer(model: str):
    from transformers import AutoTokenizer

    with loading(model):
        return AutoTokenizer.from_pretrained(model)


def pretrained_classifier(model: str) -> torch.nn.Module:
    """A one-logit sequence classifier over the pretrained encoder `model` (the head newly initialised)."""
    from transformers import AutoModelForSequenceClassification

    with loading(model):
        return AutoModelForSequenceClassification.from_pretrained(model, num_labels=1)


class PairReader:
    """Logits and scores of pairs of cards by row: tokenised a batch at a time, in either order."""

    def __init__(
        self, tokenizer, left: np.ndarray, right: np.ndarray, max_length: int, batch_size: int, precision: str
    ):
        self.tokenizer, self.left, self.right = tokenizer, left, right
        self.max_length, self.batch_size, self.bfloat16 = max_length, batch_size, precision == "bfloat16"

    def logits(self, model: torch.nn.Module, rows: np.ndarray, swapped: np.ndarray) -> torch.Tensor:
        first = np.where(swapped, self.right[rows], self.left[rows]).tolist()
        second = np.where(swapped, self.left[rows], self.right[rows]).tolist()
        device = next(model.parameters()).device
        batch = self.tokenizer(
            first, second, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        ).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bfloat16):
            return model(**batch).logits.squeeze(-1).float()

    def scores(self, model: torch.nn.Module, rows: np.ndarray | None = None) -> np.ndarray:
        """The mean probability of both orders (every row by default), a batch at a time."""
        rows = np.arange(len(self.left)) if rows is None else rows
        # Pairs of similar length batched together: less padding to compute (by characters, a proxy for tokens).
        length = pd.Series(self.left[rows]).str.len().to_numpy() + pd.Series(self.right[rows]).str.len().to_numpy()
        order = np.argsort(length, kind="stable")
        out = np.empty(len(rows))
        step = 2 * self.batch_size
        with torch.inference_mode():
            for start in range(0, len(rows), step):
                chunk = order[start : start + step]
                both = [torch.sigmoid(self.logits(model, rows[chunk], np.full(len(chunk), s))) for s in (False, True)]
                out[chunk] = ((both[0] + both[1]) / 2).cpu().numpy()
        return out


def pair_reader(tokenizer, pairs: pd.DataFrame, ids: np.ndarray, cards: np.ndarray, serialisation: dict) -> PairReader:
    """The reader of `pairs` (KEYS columns) whose products' cards are `cards`, aligned to the sorted `ids`,
    by the serialisation saved with the weights (`serialisation`)."""
    left, right = (cards[positions(ids, pairs[key].to_numpy(np.int64))] for key in KEYS)
    reading = (serialisation[key] for key in ("max_length", "batch_size", "precision"))
    return PairReader(tokenizer, left, right, *reading)


def serialisation_of(settings: CrossEncoder, keys: list[str]) -> dict:
    """How cards are written and read: saved with the weights, so new pairs are read as the training pairs were."""
    names = ("model", "attribute_count", "description_chars", "max_length", "batch_size", "precision")
    return {"keys": keys, **{name: getattr(settings, name) for name in names}}


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
    target_tensor = torch.tensor(target, dtype=torch.float32, device=device)

    def fit_predict(train: np.ndarray, valid: np.ndarray, fold: int):
        set_determinism(seed + fold)
        model = pretrained_classifier(settings.model).to(device)
        order_rng = np.random.default_rng([seed, fold])

        def batch_loss(rows: torch.Tensor) -> torch.Tensor:
            swapped = order_rng.random(len(rows)) < 0.5
            logits = train_pairs.logits(model, rows.cpu().numpy(), swapped)
            return functional.binary_cross_entropy_with_logits(logits, target_tensor[rows])

        scores, model = fit_network(
            model,
            batch_loss,
            lambda rows: train_pairs.scores(model, rows),
            train,
            valid,
            fold,
            inner,
            target,
            settings,
            seed,
            curves,
            optimizer_class=torch.optim.AdamW,
            warmup_share=settings.warmup_share,
        )
        return scores, model

    return fit_predict


def save(models: list[torch.nn.Module], tokenizer, serialisation: dict, model_dir: Path) -> None:
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
        from transformers import AutoConfig, AutoModelForSequenceClassification

        config = AutoConfig.from_pretrained(model_dir)
        folds = load_fold_models(model_dir, lambda _: AutoModelForSequenceClassification.from_config(config))
        serialisation = json.loads((model_dir / "architecture.json").read_text())
        return cls(folds, pretrained_tokenizer(str(model_dir)), serialisation)

    def score(self, pairs: pd.DataFrame, products: pd.DataFrame, device: torch.device) -> np.ndarray:
        """The folds' mean score of each pair (KEYS); `products` hold at least the pairs' products."""
        wanted = products[products.variantid.isin(np.unique(pairs[KEYS].to_numpy()))].sort_values("variantid")
        saved = self.serialisation
        cards = card_texts(wanted, saved["keys"], saved["attribute_count"], saved["description_chars"])
        reader = pair_reader(self.tokenizer, pairs, wanted.variantid.to_numpy(np.int64), cards, saved)
        return np.mean([reader.scores(model.to(device)) for model in self.folds], axis=0)
