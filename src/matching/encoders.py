"""Pluggable text encoders: the same stage code runs a hub model, a local model folder or the offline
lexical backend.

Every encoder sees each distinct text once; texts are encoded in order of length so that batches
pad little, and the vectors are put back in the caller's order.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from matching.io import atomic_path

TextEncoder = Callable[[Sequence[str]], np.ndarray]


def resolve_device(device: str) -> str:
    """`auto` means a GPU when torch sees one."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"params.yaml: embed.device is {device!r}; use auto, cpu or cuda")
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def lexical_encoder(dim: int, ngram_min: int, ngram_max: int, max_features: int, seed: int,
                    fit_sample: int = 200_000, chunk: int = 65_536) -> TextEncoder:
    """Character n-gram TF-IDF reduced by TruncatedSVD, unit length: no weights to download.

    TF-IDF and SVD are fitted on a seeded sample of at most `fit_sample` texts (all of them when
    there are fewer), then every text is projected chunk by chunk, so memory does not grow with
    the number of products."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    def encode(texts: Sequence[str]) -> np.ndarray:
        tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(ngram_min, ngram_max), max_features=max_features,
                                sublinear_tf=True, lowercase=True, dtype=np.float32)
        sample = fit_sample_rows(len(texts), fit_sample, seed)
        matrix = tfidf.fit_transform([texts[i] for i in sample])
        components = min(dim, matrix.shape[0] - 1, matrix.shape[1] - 1)
        vectors = np.zeros((len(texts), dim), dtype=np.float32)
        if components >= 1:
            svd = TruncatedSVD(n_components=components, random_state=seed)
            vectors[sample, :components] = svd.fit_transform(matrix)
            rest = np.setdiff1d(np.arange(len(texts)), sample)
            for start in range(0, len(rest), chunk):
                rows = rest[start:start + chunk]
                vectors[rows, :components] = svd.transform(transform_in_parallel(tfidf, [texts[i] for i in rows]))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    return encode


def transform_in_parallel(vectorizer, texts: list[str], min_texts: int = 20_000):
    """`vectorizer.transform(texts)` split over one process a core: scikit-learn counts character
    n-grams in Python, so this is the slow part of TF-IDF on millions of texts."""
    from joblib import Parallel, delayed
    from scipy import sparse

    jobs = len(os.sched_getaffinity(0))
    if jobs < 2 or len(texts) < min_texts:
        return vectorizer.transform(texts)
    step = -(-len(texts) // jobs)
    parts = Parallel(n_jobs=jobs)(delayed(vectorizer.transform)(texts[i:i + step]) for i in range(0, len(texts), step))
    return sparse.vstack(parts).tocsr()


def fit_sample_rows(n: int, limit: int, seed: int) -> np.ndarray:
    """All rows when there are at most `limit`, else a seeded sample of `limit` rows, in order."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


PRECISIONS = ("float32", "bfloat16", "int8")


def load_sentence_transformer(model: str, device: str, max_length: int, precision: str = "float32"):
    """A SentenceTransformer from a hub name or a local folder, at the given precision.

    int8 is dynamic quantisation of the linear layers (CPU); bfloat16 halves the weights (GPU, or
    CPUs with bf16 units). Torch uses every core this process may run on.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    if precision not in PRECISIONS:
        raise ValueError(f"params.yaml: embed precision {precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    device = resolve_device(device)
    encoder = SentenceTransformer(model, device=device)
    encoder.max_seq_length = max_length
    if precision == "bfloat16":
        encoder = encoder.to(torch.bfloat16)
    elif precision == "int8":
        if device != "cpu":
            raise ValueError("params.yaml: int8 precision runs on the CPU only; set embed.device: cpu or another precision")
        with warnings.catch_warnings():  # deprecated in favour of torchao, still present in the pinned torch
            warnings.simplefilter("ignore")
            encoder = torch.ao.quantization.quantize_dynamic(encoder, {torch.nn.Linear}, dtype=torch.qint8)
    return encoder.eval()


def sentence_transformer_encoder(model: str, device: str, batch_size: int, max_length: int,
                                 precision: str = "float32", cache_dir: Path | None = None) -> TextEncoder:
    """Length-sorted chunks of distinct texts through a SentenceTransformer.

    With `cache_dir`, every finished chunk is saved there, so a run that is killed resumes where it
    stopped; the folder is keyed by model, settings and texts, and removed once all are encoded.
    """
    import torch

    encoder = load_sentence_transformer(model, device, max_length, precision)
    # Renamed in sentence-transformers 6; older releases have only the long name.
    dimension = getattr(encoder, "get_embedding_dimension", encoder.get_sentence_embedding_dimension)()

    def encode(texts: Sequence[str]) -> np.ndarray:
        order = np.argsort([len(t) for t in texts], kind="stable")
        vectors = np.empty((len(texts), dimension), dtype=np.float32)
        chunk = batch_size * 16
        folder = None
        if cache_dir is not None:
            key = hashlib.sha256(json.dumps([model, max_length, precision, chunk]).encode())
            for text in texts:
                key.update(text.encode("utf-8", "surrogatepass") + b"\0")
            folder = Path(cache_dir) / key.hexdigest()[:16]
            folder.mkdir(parents=True, exist_ok=True)
        with torch.inference_mode(), tqdm(total=len(texts), desc=f"encode {model}", unit="text") as progress:
            for number, start in enumerate(range(0, len(texts), chunk)):
                rows = order[start:start + chunk]
                saved = folder / f"chunk_{number:06d}.npy" if folder else None
                if saved is not None and saved.exists():
                    vectors[rows] = np.load(saved, allow_pickle=False)
                else:
                    vectors[rows] = encoder.encode([texts[i] for i in rows], batch_size=batch_size,
                                                   convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
                    if saved is not None:
                        with atomic_path(saved) as tmp:
                            with open(tmp, "wb") as handle:
                                np.save(handle, vectors[rows], allow_pickle=False)
                progress.update(len(rows))
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        return vectors

    return encode


def make_encoder(settings: dict, device: str, lexical: dict, seed: int, cache_dir: Path | None = None) -> TextEncoder:
    backend = settings["backend"]
    if backend == "lexical":
        return lexical_encoder(int(lexical["dim"]), int(lexical["ngram_min"]), int(lexical["ngram_max"]),
                               int(lexical["max_features"]), seed, int(lexical["fit_sample"]))
    if backend == "sentence-transformers":
        return sentence_transformer_encoder(str(settings["model"]), device, int(settings["batch_size"]),
                                            int(settings["max_length"]), str(settings.get("precision", "float32")),
                                            cache_dir)
    raise ValueError(f"params.yaml: embed backend {backend!r} is unknown; use lexical or sentence-transformers")


def encode_distinct(texts: pd.Series, encode: TextEncoder) -> np.ndarray:
    """One vector per row, each distinct text encoded once; a missing text gives a NaN row."""
    codes, uniques = pd.factorize(texts, use_na_sentinel=True)
    if len(uniques) == 0:
        return np.full((len(texts), 1), np.nan, dtype=np.float32)
    unique_vectors = np.asarray(encode(list(uniques)), dtype=np.float32)
    vectors = unique_vectors[np.maximum(codes, 0)]
    vectors[codes < 0] = np.nan
    return vectors
