"""The cross-encoder's cost: fine-tuning steps and scoring, pairs a second, and an epoch at full volume.

Cards are the pipeline's (`card_texts`) of the first `--pairs` train pairs of an archive folder (the
demo by default); the model is built locally with a real architecture's shape and random weights
(no hub here; `encoder_speed.build_model`), which runs at the real model's speed. Times `--steps`
training steps (after a few to warm up: CUDA context, kernels) and the scoring of the pairs in both
orders, then prints pairs a second and what one epoch over `--epoch-pairs` would take. Also times
the input alone, pairs a second made into model inputs: from cards tokenised once (`CardTokens`, the
reader's way) against tokenising each batch's two texts (the tokenizer's pair call), since on a GPU
the input, not the model, can set the pace.

    python benchmarks/cross_encoder_speed.py [--raw data/demo] [--arch rubert-tiny2] [--device cuda]
        [--precision bfloat16] [--batch-size 32] [--max-length 128] [--steps 50]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from encoder_speed import build_model, corpus_texts
from matching.data.raw import read_product_rows
from matching.matchers.cross_encoding import batching, pretrained, serialising  # noqa: E402
from matching.matchers.fitting import trained_weights
from results import run_recorded  # noqa: E402

FULL_VOLUME_PAIRS = 1_170_000  # the real archive's train pairs


def cards_of_pairs(raw: Path, n_pairs: int, attribute_count: int, description_chars: int) -> tuple:
    """Both cards of the first `n_pairs` train pairs of the archive folder `raw`."""
    pairs = pd.read_parquet(raw / "train.parquet").head(n_pairs)
    ids = np.unique(pairs[["variantid1", "variantid2"]].to_numpy())
    attributes = read_product_rows(raw, "attributes", ("characteristic_attributes_mapping",), ids).to_pandas()
    text = read_product_rows(raw, "text_and_bert", ("name", "description"), ids).to_pandas()
    products = text.merge(attributes, on="variantid").sort_values("variantid")
    products = products.rename(columns={"characteristic_attributes_mapping": "attributes"})
    keys = serialising.key_order(products.attributes)
    cards = serialising.card_texts(products, keys, attribute_count, description_chars)
    found = products.variantid.to_numpy()
    return tuple(cards[np.searchsorted(found, pairs[key].to_numpy())] for key in ("variantid1", "variantid2"))


def input_pairs_a_second(tokenizer, reader, left, right, batch_size: int, max_length: int) -> tuple[float, float]:
    """Model inputs made a second: from the reader's cards tokenised once, and by tokenising each batch."""
    rng = np.random.default_rng(1)
    batches = [rng.choice(len(left), batch_size, replace=False) for _ in range(100)]
    rates = []
    for make in (
        lambda rows: reader.cards.batch(reader.left[rows], reader.right[rows]),
        lambda rows: batching.tokenised_pairs(tokenizer, left[rows], right[rows], max_length),
    ):
        start = time.perf_counter()
        for rows in batches:
            make(rows)
        rates.append(len(batches) * batch_size / (time.perf_counter() - start))
    return rates[0], rates[1]


def training_order(reader, batch_size: int, rows: int, group_by_length: bool, rng: np.random.Generator) -> np.ndarray:
    """At least `rows` rows in the order training reads them: epochs of whole batches, shuffled, and
    grouped by length where asked, as `fit_cross_encoder` groups them."""
    lengths = reader.cards.pair_lengths(reader.left, reader.right)
    whole = len(lengths) // batch_size * batch_size
    epochs = []
    for _ in range(-(-rows // whole)):
        order = rng.permutation(len(lengths))
        epochs.append((batching.length_grouped(order, lengths, batch_size, rng) if group_by_length else order)[:whole])
    return np.concatenate(epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=Path("data/demo"))
    parser.add_argument("--pairs", type=int, default=4000, help="pairs whose cards are read")
    parser.add_argument("--arch", default="rubert-tiny2", help="a shape of encoder_speed.ARCHITECTURES")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--attribute-count", type=int, default=8)
    parser.add_argument("--description-chars", type=int, default=200)
    parser.add_argument(
        "--freeze-word-embeddings",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep the vocabulary's vectors as pretrained (cross_encoder.freeze_word_embeddings)",
    )
    parser.add_argument(
        "--group-by-length",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="batches of pairs of similar length (cross_encoder.group_by_length)",
    )
    parser.add_argument("--steps", type=int, default=50, help="training steps timed")
    parser.add_argument("--epoch-pairs", type=int, default=FULL_VOLUME_PAIRS)
    args = parser.parse_args()
    left, right = cards_of_pairs(args.raw, args.pairs, args.attribute_count, args.description_chars)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as scratch:
        build_model(Path(scratch), args.arch, corpus_texts(args.raw))
        folder = str(Path(scratch) / "bert")
        tokenizer = pretrained.pretrained_tokenizer(folder)
        model = pretrained.pretrained_classifier(folder, args.freeze_word_embeddings).to(device)
    start = time.perf_counter()
    reader = batching.texts_reader(tokenizer, left, right, args.max_length, args.batch_size, args.precision)
    tokenise_rate = 2 * len(left) / (time.perf_counter() - start)
    input_rates = input_pairs_a_second(tokenizer, reader, left, right, args.batch_size, args.max_length)
    optimizer = torch.optim.AdamW(trained_weights(model), lr=5e-5)
    rng = np.random.default_rng(0)
    target = rng.integers(0, 2, len(left)).astype(np.float32)
    warm_up = 3
    order = training_order(reader, args.batch_size, (warm_up + args.steps) * args.batch_size, args.group_by_length, rng)
    for step in range(warm_up + args.steps):
        if step == warm_up:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        rows = order[step * args.batch_size : (step + 1) * args.batch_size]
        logits = reader.logits(model, rows, rng.random(len(rows)) < 0.5)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, batching.on_device(torch.from_numpy(target[rows]), device)
        )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_rate = args.steps * args.batch_size / (time.perf_counter() - start)
    model.eval()
    start = time.perf_counter()
    reader.scores(model)
    score_rate = len(left) / (time.perf_counter() - start)
    cards = reader.cards  # each pair's whole length, before the cut
    tokens = cards.lengths[reader.left] + cards.lengths[reader.right] + cards.template.special_count
    frozen = "word embeddings frozen" if args.freeze_word_embeddings else "all weights tuned"
    grouped = "grouped by length" if args.group_by_length else "random"
    print(
        f"{args.arch} on {args.device} ({args.precision}, {frozen}), batch {args.batch_size} ({grouped}), "
        f"max_length {args.max_length}, "
        f"pair tokens median {np.median(tokens):.0f} (p90 {np.percentile(tokens, 90):.0f}, cut at {args.max_length})"
    )
    print(
        f"input alone: {input_rates[0]:,.0f} pairs a second from cards tokenised once "
        f"({tokenise_rate:,.0f} cards a second to tokenise them), {input_rates[1]:,.0f} tokenising each batch"
    )
    print(f"fine-tuning: {train_rate:,.0f} pairs a second ({args.steps} steps)")
    print(f"scoring, both orders: {score_rate:,.0f} pairs a second ({len(left):,} pairs)")
    print(
        f"one epoch over {args.epoch_pairs:,} pairs: {args.epoch_pairs / train_rate / 60:,.1f} min fine-tuning, "
        f"{args.epoch_pairs / score_rate / 60:,.1f} min to score them"
    )


if __name__ == "__main__":
    run_recorded("cross_encoder_speed", main)
