"""Transformer encoding: this pipeline's path against the plain baseline, same model, same texts.

Baseline: `SentenceTransformer.encode` over every text of every pair, in file order (a product
appearing in many pairs is encoded each time). Pipeline: each distinct text once, length-sorted
chunks, inference mode, all cores; int8 on a CPU, bfloat16 on a GPU. The model is built locally
with a real architecture's shape and random weights (no hub here), which runs at the real model's
speed.

    python benchmarks/encoder_speed.py [--raw data/demo] [--pairs 4000] [--arch rubert-tiny2] [--device cuda]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from matching.encoders.base import encode_distinct
from matching.encoders.texts import attributes_text, clean_description
from matching.encoders.transformer import load_sentence_transformer, sentence_transformer_encoder
from results import run_recorded  # noqa: E402

ARCHITECTURES = {  # layers, hidden, heads, intermediate, vocabulary: the real models' shapes
    "rubert-tiny2": (3, 312, 12, 600, 83828),
    "paraphrase-multilingual-MiniLM-L12-v2": (12, 384, 12, 1536, 250037),
    "all-MiniLM-L6-v2": (6, 384, 12, 1536, 30522),
}


def corpus_texts(raw: Path) -> list[str]:
    corpus = pd.read_parquet(raw / "text_and_bert.parquet", columns=["name", "description"])
    return list(corpus["name"].fillna("")) + list(clean_description(corpus["description"]).dropna())


def build_model(folder: Path, arch: str, texts: list[str], full_vocabulary: bool = False) -> Path:
    """A sentence-transformer of `arch`'s shape with random weights and a WordPiece tokenizer trained on
    `texts`; with `full_vocabulary`, the vocabulary is filled up to the real model's size with made-up
    tokens (the distillation's cost and the embedding table's size are the real ones)."""
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    layers, hidden, heads, intermediate, vocabulary = ARCHITECTURES[arch]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=30000, special_tokens=special))
    if full_vocabulary:
        learnt = tokenizer.get_vocab()
        filler = (f"##q{i}" for i in range(vocabulary))
        added = [token for token in filler if token not in learnt][: max(0, vocabulary - len(learnt))]
        tokens = {**learnt, **{token: len(learnt) + i for i, token in enumerate(added)}}
        trained = tokenizer
        tokenizer = Tokenizer(models.WordPiece(tokens, unk_token="[UNK]"))
        tokenizer.normalizer, tokenizer.pre_tokenizer = trained.normalizer, trained.pre_tokenizer
        tokenizer.post_processor, tokenizer.decoder = trained.post_processor, trained.decoder
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    config = BertConfig(
        vocab_size=max(vocabulary, fast.vocab_size),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=514,
    )
    BertModel(config).save_pretrained(folder / "bert")
    fast.save_pretrained(folder / "bert")
    SentenceTransformer(str(folder / "bert"), device="cpu").save(str(folder / "st"))
    return folder / "st"


def pair_texts(raw: Path, n_pairs: int, modality: str) -> pd.Series:
    """The modality's text of both products of the first `n_pairs` train pairs, in file order."""
    pairs = pd.read_parquet(raw / "train.parquet").head(n_pairs)
    ids = np.concatenate([pairs.variantid1.to_numpy(), pairs.variantid2.to_numpy()])
    if modality == "attributes":
        table = pd.read_parquet(raw / "attributes.parquet").set_index("variantid")
        texts = attributes_text(table["characteristic_attributes_mapping"])
    else:
        table = pd.read_parquet(raw / "text_and_bert.parquet").set_index("variantid")
        texts = clean_description(table["description"])
    return pd.Series(texts.reindex(ids).to_numpy(), dtype=object)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, default=Path("data/demo"))
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="rubert-tiny2")
    parser.add_argument("--modality", choices=["attributes", "descriptions"], default="descriptions")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    texts = pair_texts(args.raw, args.pairs, args.modality)
    present = texts.dropna()
    with tempfile.TemporaryDirectory() as scratch:
        model = str(build_model(Path(scratch), args.arch, corpus_texts(args.raw)))
        rows = []
        baseline = load_sentence_transformer(model, args.device, args.max_length)
        baseline.encode(list(present[:256]), batch_size=args.batch_size)  # warm-up (CUDA context, kernels)
        start = time.perf_counter()
        reference = baseline.encode(list(present), batch_size=args.batch_size, convert_to_numpy=True)
        plain_seconds = time.perf_counter() - start
        rows.append(("plain encode, every pair's text in file order", len(present), plain_seconds, 1.0))
        for precision in ("float32", "int8" if args.device == "cpu" else "bfloat16"):
            encoder = sentence_transformer_encoder(model, args.device, args.batch_size, args.max_length, precision)
            encoder(list(present[:256]))  # warm-up, as for the baseline
            start = time.perf_counter()
            vectors = encode_distinct(texts, encoder)
            seconds = time.perf_counter() - start
            ours = vectors[texts.notna().to_numpy()]
            # Random weights make every vector point almost the same way: compare them centred.
            a, b = ours - reference.mean(0), reference - reference.mean(0)
            cosine = np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
            rows.append(
                (
                    f"pipeline: distinct, length-sorted, {precision} (centred cosine to plain >= {cosine.min():.3f})",
                    present.nunique(),
                    seconds,
                    plain_seconds / seconds,
                )
            )
    print(
        f"{args.arch} on {args.device}, {args.modality}, max_length {args.max_length}, {args.pairs} pairs "
        f"({len(texts)} texts, {len(present)} present, {present.nunique()} distinct)"
    )
    print(f"{'path':<78}{'texts':>7}{'seconds':>9}{'texts/s':>9}{'speed-up':>9}")
    for name, count, seconds, speedup in rows:
        print(f"{name:<78}{count:>7}{seconds:>9.1f}{count / seconds:>9.0f}{speedup:>8.1f}x")


if __name__ == "__main__":
    run_recorded("encoder_speed", main)
