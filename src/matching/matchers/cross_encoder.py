"""Matcher `cross_encoder`: a pretrained transformer fine-tuned on both cards of a pair in one sequence.

A pair is read as the model's own pair input (`[CLS] card a [SEP] card b [SEP]` for BERT), each card
serialised by `card_texts`: its name, then up to `attribute_count` attributes as `key: values`, the
keys that most training products fill first, then the first `description_chars` characters of its
cleaned description. One logit on the pretrained encoder (a new head, `pooling`: the model's own
classification head on [CLS], or one on the mean of the pair's tokens), cross-entropy, AdamW with a
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
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn import functional
from transformers.modeling_outputs import SequenceClassifierOutput

from matching.config import CrossEncoder, Pooling
from matching.data.ids import positions
from matching.encoders.texts import clean_description, render_attributes
from matching.errors import StageError
from matching.features.columns import KEYS
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
    excerpt. A key outside `keys` ranks after them; a missing part is left out. A loop parses each
    JSON dict: small beside the model's cost over the same cards."""
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


class MeanPooledClassifier(torch.nn.Module):
    """One logit on the mean of the encoder's last hidden states over the pair's tokens (padding left out):
    the vector a sentence-transformers model that pools by mean (all-MiniLM-L6-v2) was trained to make,
    where the model's own head reads a [CLS] token such a model never trained."""

    def __init__(self, encoder: Any):  # a transformers model: its config and input embeddings are read
        super().__init__()
        self.encoder, self.config = encoder, encoder.config
        self.dropout = torch.nn.Dropout(encoder.config.hidden_dropout_prob)
        self.head = torch.nn.Linear(encoder.config.hidden_size, 1)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.encoder.get_input_embeddings()

    def forward(self, attention_mask: torch.Tensor, **inputs) -> SequenceClassifierOutput:
        hidden = self.encoder(attention_mask=attention_mask, **inputs).last_hidden_state.float()
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        return SequenceClassifierOutput(logits=self.head(self.dropout(pooled)))


def model_pooling(model: str, pooling: Pooling) -> Pooling:
    """`pooling` itself, or for `auto` the way the model pools a sentence where it says so: `mean` where its
    sentence-transformers `Pooling` module (modules.json) takes the tokens' mean, else `cls`."""
    if pooling != "auto":
        return pooling
    from transformers.utils import cached_file

    def read(name: str) -> Any:  # a file of the folder or hub model, None where it has none
        found = cached_file(model, name, _raise_exceptions_for_missing_entries=False)
        return json.loads(Path(found).read_text()) if found else None

    with loading(model):
        modules = read("modules.json") or []
        folder = next((module["path"] for module in modules if module["type"].endswith(".Pooling")), None)
        pooling_config = (read(f"{folder}/config.json") if folder is not None else None) or {}
    # older sentence-transformers wrote a flag a mode (all-MiniLM-L6-v2's folder); 6 writes the mode's name
    mode = pooling_config.get("pooling_mode") or ("mean" if pooling_config.get("pooling_mode_mean_tokens") else None)
    return "mean" if mode == "mean" else "cls"


def classifier_from_config(config, pooling: str) -> torch.nn.Module:
    """An untrained classifier of the architecture `config`, pooled as `pooling` says: saved weights load into it."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    if pooling == "mean":
        return MeanPooledClassifier(AutoModel.from_config(config))
    return AutoModelForSequenceClassification.from_config(config)


def pretrained_classifier(
    model: str, freeze_word_embeddings: bool = False, pooling: Pooling = "cls"
) -> torch.nn.Module:
    """A one-logit classifier over the pretrained encoder `model` (the head newly initialised): the model's
    own sequence-classification head (`cls`) or one on the mean of its tokens (`mean`; `auto`: as the
    model pools, `model_pooling`), its word embeddings left out of training if asked."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    with loading(model):
        if model_pooling(model, pooling) == "mean":
            classifier = MeanPooledClassifier(AutoModel.from_pretrained(model))
        else:
            classifier = AutoModelForSequenceClassification.from_pretrained(model, num_labels=1)
    # Most of a small model's weights (26 M of rubert-tiny2's 29 M): tuned, AdamW's step over them is a
    # large share of a CPU step; kept, the inner split read the same PR-AUC on the real offers (README).
    classifier.get_input_embeddings().weight.requires_grad_(not freeze_word_embeddings)
    return classifier


@dataclass(frozen=True)
class PairTemplate:
    """Where a model puts its special tokens around two cards' tokens (`[CLS] a [SEP] b [SEP]` for
    BERT, `<s> a </s></s> b </s>` for RoBERTa) and each part's token type, read off the tokenizer."""

    prefix: np.ndarray
    middle: np.ndarray
    suffix: np.ndarray
    part_types: np.ndarray  # prefix, first card, middle, second card, suffix, padding
    pad_id: int
    token_types: bool  # whether the model takes token_type_ids

    @classmethod
    def of(cls, tokenizer) -> PairTemplate:
        encoding = tokenizer("a", "b", return_token_type_ids=True)
        ids, sequence = np.array(encoding["input_ids"]), np.array(encoding.sequence_ids(0), dtype=object)
        first, second = np.flatnonzero(sequence == 0), np.flatnonzero(sequence == 1)
        types = np.array(encoding["token_type_ids"])
        cut = [first[0], first[-1] + 1, second[0], second[-1] + 1]
        return cls(
            prefix=ids[: cut[0]],
            middle=ids[cut[1] : cut[2]],
            suffix=ids[cut[3] :],
            # Each part's type at its first position (an empty part's is its neighbour's: it types nothing).
            part_types=np.array([*(types[min(c, len(types) - 1)] for c in [0, *cut]), 0]),
            pad_id=tokenizer.pad_token_id,
            token_types="token_type_ids" in tokenizer.model_input_names,
        )

    @property
    def special_count(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)


def truncated_lengths(first: np.ndarray, second: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Both cards' token counts cut to `budget` together as the tokenizers' `longest_first` cuts them:
    tokens come off the longer card; the shorter keeps at most half, and of equal cards the second
    keeps the odd token."""
    fits = first + second <= budget
    half = budget // 2
    second_kept = np.where(second < first, np.minimum(second, half), budget - np.minimum(first, half))
    second_kept = np.where(first == second, budget - half, second_kept)
    return np.where(fits, first, budget - second_kept), np.where(fits, second, second_kept)


class CardTokens:
    """Every card tokenised once (not once a pair and a step: on a GPU, tokenising each batch's texts
    left the device waiting), the tokens of all cards in one array; a batch of pairs is assembled from
    slices of it with the model's special tokens, truncated as the tokenizer's pair call would."""

    def __init__(self, tokenizer, cards: np.ndarray, max_length: int, chunk: int = 20_000):
        self.template, self.max_length = PairTemplate.of(tokenizer), max_length
        self.budget = max_length - self.template.special_count
        pieces, lengths = [], []
        for start in range(0, len(cards), chunk):
            encoded = tokenizer(cards[start : start + chunk].tolist(), add_special_tokens=False)["input_ids"]
            # Whole lengths (the cut depends on them), only the tokens a pair can keep.
            lengths.append(np.fromiter(map(len, encoded), np.int64, len(encoded)))
            pieces.append(np.fromiter((token for card in encoded for token in card[: self.budget]), np.int32))
        self.lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        stored = np.minimum(self.lengths, self.budget)
        self.starts = np.concatenate([[0], np.cumsum(stored)[:-1]]).astype(np.int64)
        template = self.template
        # The special tokens and the padding id follow the cards' tokens, so one gather builds a batch.
        self.special_start = int(stored.sum())
        specials = [template.prefix, template.middle, template.suffix, [template.pad_id]]
        self.tokens = np.concatenate([*pieces, *(np.asarray(part, np.int32) for part in specials)])

    def pair_lengths(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Tokens of each pair's sequence, special tokens included."""
        kept = truncated_lengths(self.lengths[first], self.lengths[second], self.budget)
        return kept[0] + kept[1] + self.template.special_count

    def batch(self, first: np.ndarray, second: np.ndarray) -> dict[str, torch.Tensor]:
        """Model inputs for the pairs of cards (`first`[i], `second`[i]), padded to the longest."""
        template = self.template
        kept_first, kept_second = truncated_lengths(self.lengths[first], self.lengths[second], self.budget)
        # Where each part of a row ends: prefix, first card, middle, second card, suffix.
        ends = np.cumsum(
            np.stack(
                [
                    np.full(len(first), len(template.prefix)),
                    kept_first,
                    np.full(len(first), len(template.middle)),
                    kept_second,
                    np.full(len(first), len(template.suffix)),
                ],
                axis=1,
            ),
            axis=1,
        )
        column = np.arange(ends[:, -1].max())[None, :]
        part = (column[..., None] >= ends[:, None, :]).sum(axis=2)  # 0-4 the parts, 5 padding
        begins = np.concatenate([np.zeros((len(first), 1), np.int64), ends[:, :-1]], axis=1)
        special = self.special_start
        source = np.stack(
            [
                np.full(len(first), special),
                self.starts[first],
                np.full(len(first), special + len(template.prefix)),
                self.starts[second],
                np.full(len(first), special + len(template.prefix) + len(template.middle)),
                np.full(len(first), len(self.tokens) - 1),  # the padding id
            ],
            axis=1,
        )
        offset = np.where(part < 5, column - np.take_along_axis(begins, np.minimum(part, 4), axis=1), 0)
        ids = self.tokens[np.take_along_axis(source, part, axis=1) + offset].astype(np.int64)
        inputs = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy((part < 5).astype(np.int64))}
        if template.token_types:
            inputs["token_type_ids"] = torch.from_numpy(template.part_types[part])
        return inputs


def length_grouped(
    order: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator, pool_batches: int = 50
) -> np.ndarray:
    """The rows of `order` (shuffled) rearranged so that a batch holds pairs of similar length: each run
    of `pool_batches` batches is sorted by `lengths` (of the rows) and cut into batches, and the whole
    batches are shuffled; a partial batch stays last. A batch is padded to its longest pair, and random
    batches of 16 computed 1.37-1.44x the real offers' tokens (1.01-1.02x grouped); a pool keeps
    batches random beyond it (as transformers' `group_by_length`, which pools 50 batches)."""
    pool = np.arange(len(order)) // (batch_size * pool_batches)
    grouped = order[np.lexsort((lengths[order], pool))]
    whole = len(order) // batch_size * batch_size
    batches = grouped[:whole].reshape(-1, batch_size)[rng.permutation(whole // batch_size)]
    return np.concatenate([batches.ravel(), grouped[whole:]])


def tokenised_pairs(tokenizer, first: np.ndarray, second: np.ndarray, max_length: int) -> dict:
    """The tokenizer's own pair call on two arrays of card texts: what `CardTokens.batch` reproduces
    from cards tokenised once (and what each batch cost before it)."""
    return tokenizer(
        first.tolist(), second.tolist(), truncation=True, max_length=max_length, padding=True, return_tensors="pt"
    )


def on_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on `device`; to a GPU from pinned memory without waiting for the copy, so the host
    goes on to assemble the next batch while the device works."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


class PairReader:
    """Logits and scores of pairs of cards by row (`left`, `right`: positions in `cards`), in either order."""

    def __init__(self, cards: CardTokens, left: np.ndarray, right: np.ndarray, batch_size: int, precision: str):
        self.cards, self.left, self.right = cards, left, right
        self.batch_size, self.bfloat16 = batch_size, precision == "bfloat16"

    def logits(self, model: torch.nn.Module, rows: np.ndarray, swapped: np.ndarray) -> torch.Tensor:
        first = np.where(swapped, self.right[rows], self.left[rows])
        second = np.where(swapped, self.left[rows], self.right[rows])
        device = next(model.parameters()).device
        batch = {name: on_device(tensor, device) for name, tensor in self.cards.batch(first, second).items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bfloat16):
            return model(**batch).logits.squeeze(-1).float()

    def scores(self, model: torch.nn.Module, rows: np.ndarray | None = None) -> np.ndarray:
        """The mean probability of both orders (every row by default), a batch at a time."""
        rows = np.arange(len(self.left)) if rows is None else rows
        # Pairs of similar length batched together: less padding to compute.
        order = np.argsort(self.cards.pair_lengths(self.left[rows], self.right[rows]), kind="stable")
        step = 2 * self.batch_size
        means = []
        with torch.inference_mode():
            for start in range(0, len(rows), step):
                chunk = order[start : start + step]
                both = [torch.sigmoid(self.logits(model, rows[chunk], np.full(len(chunk), s))) for s in (False, True)]
                means.append((both[0] + both[1]) / 2)  # left on the device: reading it back would wait
        out = np.empty(len(rows))
        out[order] = torch.cat(means).cpu().numpy() if means else []
        return out


def texts_reader(tokenizer, left: np.ndarray, right: np.ndarray, max_length: int, batch_size: int, precision: str):
    """The reader of pairs given as their two cards' texts, row by row."""
    cards = CardTokens(tokenizer, np.concatenate([left, right]), max_length)
    rows = np.arange(len(left))
    return PairReader(cards, rows, rows + len(left), batch_size, precision)


def pair_reader(tokenizer, pairs: pd.DataFrame, ids: np.ndarray, cards: np.ndarray, serialisation: dict) -> PairReader:
    """The reader of `pairs` (KEYS columns) whose products' cards are `cards`, aligned to the sorted `ids`,
    by the serialisation saved with the weights (`serialisation`); each card tokenised once."""
    left, right = (positions(ids, pairs[key].to_numpy(np.int64)) for key in KEYS)
    tokens = CardTokens(tokenizer, cards, serialisation["max_length"])
    return PairReader(tokens, left, right, serialisation["batch_size"], serialisation["precision"])


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
            host_rows=True,
            arrange=(lambda order: length_grouped(order, lengths, settings.batch_size, batch_rng))
            if settings.group_by_length
            else None,
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

    def score(self, pairs: pd.DataFrame, products: pd.DataFrame, device: torch.device) -> np.ndarray:
        """The folds' mean score of each pair (KEYS); `products` hold at least the pairs' products."""
        wanted = products[products.variantid.isin(np.unique(pairs[KEYS].to_numpy()))].sort_values("variantid")
        saved = self.serialisation
        cards = card_texts(wanted, saved["keys"], saved["attribute_count"], saved["description_chars"])
        reader = pair_reader(self.tokenizer, pairs, wanted.variantid.to_numpy(np.int64), cards, saved)
        return np.mean([reader.scores(model.to(device)) for model in self.folds], axis=0)
