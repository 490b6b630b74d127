"""Pairs of cards as the model reads them: every card tokenised once, a batch of pairs assembled from those
tokens with the model's special tokens, batches grouped by length, moved to the device without waiting."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from matching.data.ids import positions
from matching.features.columns import KEYS


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
