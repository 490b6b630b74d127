"""The seed's text encoders at the archive's volume: the transformer path against the model alone, and
the static path (distilled) on CPU threads.

Texts: every distinct attributes string and cleaned description of a demo archive, generated here in
parallel at the size asked (`--products 2252569`: the real archive's), or read from `--raw`. Models:
random weights of the seed's shapes (attributes: paraphrase-multilingual-MiniLM-L12, 128 tokens, its
250,037-token vocabulary; descriptions: rubert-tiny2, 512 tokens, 83,828 tokens), which run at the real
models' speed. For each modality:

  model alone, fixed   random ids at (batch, max_length) through the model: sequences/s
  model alone, real    random ids in exactly the batches the pipeline made (shapes and masks), on the device
  pipeline             the stage's encoder on the distinct texts: tokenizing, batching, copies, model
                       (and its vectors against SentenceTransformer.encode on a sample)
  host alone           the pipeline's host work without the model, on --processes tokenizer processes
                       (a GPU's pool): ordering the texts, handing blocks out, tokenizing, batching
  distil               the model distilled into static token vectors (the distill stage)
  static, N threads    the texts through the static encoder (the embed_text stage's path)

    python benchmarks/encoder_rates.py --products 2252569 --device cuda --precision bfloat16
    python benchmarks/encoder_rates.py --raw data/demo --device cpu --limit 20000
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from encoder_speed import build_model
from matching import THREADS
from matching.demo.generator import DemoSize, plan, product_batches
from matching.encoders.texts import attributes_text, clean_description
from results import record

MODALITIES = {  # modality: the seed's model shape and max_length
    "attributes": ("paraphrase-multilingual-MiniLM-L12-v2", 128),
    "descriptions": ("rubert-tiny2", 512),
}
_PLAN: tuple = ()


def _batch_texts(number: int) -> tuple[list[str], list[str]]:
    cat, listings, ids, seed = _PLAN
    batch = next(product_batches(cat, listings, ids, seed, numbers=[number]))
    attributes = attributes_text(batch["attributes"].column("characteristic_attributes_mapping").to_pandas())
    descriptions = clean_description(batch["text_and_bert"].column("description").to_pandas())
    return list(attributes.dropna()), list(descriptions.dropna())


def generated_texts(products: int, processes: int) -> dict[str, list[str]]:
    """The distinct texts of the demo archive of `products` products (pairs in the full demo's ratio)."""
    global _PLAN
    pairs = round(products / 1.853)  # 2,252,569 products : 1,212,493 pairs in the full demo
    size = DemoSize(n_train_pairs=pairs - pairs // 25, n_test_pairs=pairs // 25, n_products=products)
    cat, _, listings, ids = plan(size, 7)
    _PLAN = (cat, listings, ids, 7)
    numbers = range(-(-len(listings) // 65_536))
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.map(_batch_texts, numbers)
    return {
        "attributes": list(pd.unique(pd.Series([t for part in parts for t in part[0]], dtype=object))),
        "descriptions": list(pd.unique(pd.Series([t for part in parts for t in part[1]], dtype=object))),
    }


def raw_texts(raw: Path) -> dict[str, list[str]]:
    mapping = pd.read_parquet(raw / "attributes.parquet", columns=["characteristic_attributes_mapping"])
    descriptions = pd.read_parquet(raw / "text_and_bert.parquet", columns=["description"])
    return {
        "attributes": list(attributes_text(mapping.iloc[:, 0]).dropna().unique()),
        "descriptions": list(clean_description(descriptions.iloc[:, 0]).dropna().unique()),
    }


def synchronise(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def model_alone(encoder, batches: list[np.ndarray], device: str, repeats: int = 1) -> float:
    """Seconds for random ids through the model in batches of these texts' token counts (one array a
    batch: each row's count, padded to the longest), inputs and masks already on the device."""
    import torch

    generator = torch.Generator().manual_seed(0)
    vocabulary = encoder[0].auto_model.config.vocab_size
    inputs = []
    for counts in batches:
        mask = torch.from_numpy(np.arange(counts.max()) < counts[:, None]).long()
        ids = torch.randint(5, vocabulary, tuple(mask.shape), generator=generator)
        inputs.append((ids.to(device), mask.to(device)))
    with torch.inference_mode():
        encoder({"input_ids": inputs[0][0], "attention_mask": inputs[0][1]})  # warm-up
        synchronise(device)
        start = time.perf_counter()
        for _ in range(repeats):
            for ids, mask in inputs:
                encoder({"input_ids": ids, "attention_mask": mask})
        synchronise(device)
    return (time.perf_counter() - start) / repeats


def agreement(encoder, texts: list[str], vectors: np.ndarray, size: int = 2000) -> float:
    """The least cosine between the pipeline's vectors and SentenceTransformer's own `encode` of the same
    model, on a sample of the texts: the pipeline's batching, copies and ordering change no vector."""
    rows = np.random.default_rng(0).choice(len(texts), size=min(size, len(texts)), replace=False)
    plain = encoder.encode([texts[i] for i in rows], batch_size=64, convert_to_tensor=True).float().cpu().numpy()
    ours = vectors[rows]
    cosine = (plain * ours).sum(1) / np.linalg.norm(plain, axis=1) / np.linalg.norm(ours, axis=1)
    return float(cosine.min())


def host_side(encoder, texts: list[str], budget: int, processes: int) -> dict:
    """The transformer path's host work alone, no model: starting `processes` tokenizer processes (once
    an encoder), then ordering the texts and checking the tokenizer, handing every block to the
    processes, their tokenizing, and cutting (and, for a GPU, pinning) the padded batches. Seconds of
    each step, one after another."""
    import concurrent.futures

    from matching.encoders import transformer

    lower = bool(getattr(encoder[0], "do_lower_case", False))
    begun = time.perf_counter()
    pool = transformer.tokenizer_pool(encoder, lower, processes)
    assert pool is not None
    with pool:
        list(pool.map(abs, range(2 * processes)))  # every process started and holding the tokenizer
        started = time.perf_counter() - begun  # once an encoder, beside its first call's ordering
        on_gpu = encoder.device.type == "cuda"
        start = time.perf_counter()
        batches = transformer.Batches(encoder.tokenizer, texts, encoder.max_seq_length, budget, on_gpu, lower, pool)
        blocks = batches.blocks(transformer.BLOCK_TEXTS)
        ordered = time.perf_counter()
        batches.submit(blocks)
        submitted = time.perf_counter()
        concurrent.futures.wait(list(batches.futures.values()))
        tokenized = time.perf_counter()
        for block in blocks:
            batches.block(*block)
        cut = time.perf_counter()
    return {
        "processes": processes,
        "pool_start_seconds": started,
        "order_seconds": ordered - start,
        "submit_seconds": submitted - ordered,
        "tokenize_seconds": tokenized - submitted,
        "batch_seconds": cut - tokenized,
    }


def measure(modality: str, texts: list[str], args, scratch: Path) -> dict:
    from matching.encoders import transformer
    from matching.encoders.static import distill, static_encoder

    arch, max_length = MODALITIES[modality]
    model = build_model(scratch / modality, arch, texts[:100_000], full_vocabulary=True)
    figures: dict = {"model": arch, "max_length": max_length, "texts": len(texts)}
    print(f"\n{modality}: {len(texts)} distinct texts, {arch} (random weights), max_length {max_length}", flush=True)
    if not args.no_transformer:
        encoder = transformer.load_sentence_transformer(str(model), args.device, max_length, args.precision)
        shapes: list[np.ndarray] = []  # each batch's token counts
        original = transformer.Batches.block

        def recorded(self, start, stop):
            batches = original(self, start, stop)
            shapes.extend(mask.sum(1).numpy() for _, _, mask in batches)
            return batches

        transformer.Batches.block = recorded  # type: ignore[method-assign]
        encode = transformer.sentence_transformer_encoder(
            str(model), args.device, args.batch_size, max_length, args.precision
        )
        encode(texts[:2000])  # warm-up: kernels, allocator
        shapes.clear()
        synchronise(args.device)
        start = time.perf_counter()
        vectors = encode(texts)
        synchronise(args.device)
        pipeline = time.perf_counter() - start
        transformer.Batches.block = original  # type: ignore[method-assign]
        tokens = sum(len(counts) * int(counts.max()) for counts in shapes)
        real_tokens = sum(int(counts.sum()) for counts in shapes)
        alone = model_alone(encoder, shapes, args.device)
        fixed_batches = max(1, min(50, len(texts) // args.batch_size))
        full = np.full(args.batch_size, max_length)
        fixed = model_alone(encoder, [full] * fixed_batches, args.device, repeats=2)
        figures.update(
            device=args.device,
            precision=args.precision,
            batch_tokens=args.batch_size * max_length,
            padded_tokens=tokens,
            tokens=real_tokens,
            pipeline_seconds=pipeline,
            model_alone_seconds=alone,
            fixed_sequences_per_second=args.batch_size * fixed_batches / fixed,
        )
        rows = [("model alone, the pipeline batches", alone), ("pipeline: tokenize, batch, copy, model", pipeline)]
        print(f"{'path':<44}{'seconds':>9}{'texts/s':>10}{'tokens/s':>12}")
        print(f"{'model alone, (batch, max_length) random ids':<53}{figures['fixed_sequences_per_second']:>10.0f}")
        for name, seconds in rows:
            print(f"{name:<44}{seconds:>9.1f}{len(texts) / seconds:>10.0f}{tokens / seconds:>12.0f}")
        print(f"pipeline at {alone / pipeline:.0%} of the model-alone rate", flush=True)
        cosine = figures["min_cosine_to_sentence_transformers"] = agreement(encoder, texts, vectors)
        print(f"cosine to SentenceTransformer.encode, the least of a sample of the texts: {cosine:.4f}")
        host = host_side(encoder, texts, args.batch_size * max_length, args.processes)
        figures["host"] = host
        steps = ", ".join(f"{key.removesuffix('_seconds')} {host[key]:.1f} s" for key in host if key != "processes")
        print(f"host work alone, {args.processes} tokenizer processes: {steps}", flush=True)
        del encoder
    if args.no_static:
        return figures
    start = time.perf_counter()
    distill(str(model), 256, 1e-4, args.device, scratch / f"{modality}_static")
    figures["distill_seconds"] = time.perf_counter() - start
    print(f"distil ({args.device}): {figures['distill_seconds']:.1f} s", flush=True)
    for threads in args.threads:
        encode = static_encoder(scratch / f"{modality}_static", max_length, threads=threads)
        start = time.perf_counter()
        encode(texts)
        seconds = time.perf_counter() - start
        figures[f"static_seconds_{threads}_threads"] = seconds
        print(f"static, {threads} threads: {seconds:.1f} s, {len(texts) / seconds:.0f} texts/s", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, help="a folder in the archive's format (default: generate texts)")
    parser.add_argument("--products", type=int, default=2_252_569, help="products of the generated demo")
    parser.add_argument("--limit", type=int, help="at most this many distinct texts a modality")
    parser.add_argument("--modalities", nargs="+", choices=sorted(MODALITIES), default=sorted(MODALITIES))
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--batch-size", type=int, default=64, help="embed.*.batch_size: tokens a batch / max_length")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="static encoder threads to time")
    parser.add_argument(
        "--processes", type=int, default=THREADS, help="tokenizer processes of the host-alone run (a GPU's pool)"
    )
    parser.add_argument("--no-transformer", action="store_true", help="only distil and the static encoder")
    parser.add_argument("--no-static", action="store_true", help="only the transformer path")
    parser.add_argument("--name", default="latest", help="the record's name under benchmarks/results/encoder_rates/")
    parser.add_argument("--out", type=Path, help="write the record here instead")
    args = parser.parse_args()
    start = time.perf_counter()
    texts = (
        raw_texts(args.raw) if args.raw else generated_texts(args.products, len(__import__("os").sched_getaffinity(0)))
    )
    print(
        f"texts: {', '.join(f'{m} {len(t)}' for m, t in texts.items())} distinct ({time.perf_counter() - start:.0f} s)"
    )
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for modality in args.modalities:
            results[modality] = measure(modality, texts[modality][: args.limit], args, Path(scratch))
            record(
                "encoder_rates", args.name, results, args.out
            )  # after each modality: a cut run keeps what it measured


if __name__ == "__main__":
    main()
