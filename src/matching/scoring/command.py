"""`matching-score` (or `python -m matching.scoring`): score a pairs file with a trained repository.

Reads the pairs (`variantid1, variantid2`; parquet or CSV), the catalog's products from the
repository's catalog store (`dvc repro catalog`) and any others from `--products`, a folder in the
competition archive's format (attributes, text_and_bert and resnet parquet files, either layout),
and writes `variantid1, variantid2, target` for every row, in order (CSV or parquet, by the output's
suffix): `target` is the probability from the repository's submitted model (`train.submit`).
No training, no labels, no refitting. Bad input stops with one line that says what to fix.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from matching.data.raw import read_id_file
from matching.io import write_frame
from matching.scoring.matcher import TrainedMatcher
from matching.stage import run_stage

log = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="matching-score", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1]
    )
    parser.add_argument("pairs", type=Path, help="pairs to score: parquet or CSV with columns variantid1, variantid2")
    parser.add_argument(
        "--products",
        type=Path,
        default=None,
        help="folder with the attributes, text_and_bert, resnet files of products the catalog lacks",
    )
    parser.add_argument("--output", type=Path, required=True, help="where to write the scores: .csv or .parquet")
    parser.add_argument(
        "--repo", type=Path, default=None, help="the trained repository (default: the one around the working directory)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    start = time.perf_counter()
    matcher = TrainedMatcher.load(args.repo)
    loaded = time.perf_counter()
    scores = matcher.score(read_id_file(args.pairs, ("variantid1", "variantid2")), args.products, label=str(args.pairs))
    write_frame(scores, args.output)
    log.info(
        f"score: {len(scores)} pairs scored by {matcher.model} of {matcher.layout.root} -> {args.output} "
        f"(models loaded in {loaded - start:.1f} s, scored in {time.perf_counter() - loaded:.1f} s)"
    )


def run() -> None:
    """The console script's entry point."""
    run_stage(main)


if __name__ == "__main__":
    run()
