"""`matching-find` (or `python -m matching.retrieval`): find catalog products' matches with a trained repository.

The queries are catalog products by id (QUERIES: a `variantid` column; parquet or CSV) or new
product cards (`--cards DIR`: a folder in the archive's format, attributes, text_and_bert and resnet
files, every card of it a query, embedded by the repository's saved encoders). Each query's `--k`
nearest other catalog products come from the repository's index (`dvc repro index`), those pairs
are scored by its candidate model (`dvc repro train_candidates`), and `query_id, candidate_id, rank,
ann_score, match_probability, predicted_match` is written (CSV or parquet, by the output's suffix),
each query's candidates ranked by the probability, the predicted matches marked by the rule and
threshold chosen out of fold. Bad input stops with one line that says what to fix.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from matching.data import contract
from matching.data.raw import read_id_file
from matching.errors import DataError
from matching.io import write_frame
from matching.retrieval.matches import CatalogMatcher
from matching.stage import run_stage

log = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="matching-find", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1]
    )
    queries = parser.add_mutually_exclusive_group(required=True)
    queries.add_argument(
        "queries", type=Path, nargs="?", help="catalog products to query: parquet or CSV with a column variantid"
    )
    queries.add_argument("--cards", type=Path, help="new products to query: a folder of cards in the archive's format")
    parser.add_argument("--output", type=Path, required=True, help="where to write the matches: .csv or .parquet")
    parser.add_argument("--k", type=int, default=None, help="candidates a query (default: retrieval.k of params.yaml)")
    parser.add_argument(
        "--repo", type=Path, default=None, help="the trained repository (default: the one around the working directory)"
    )
    return parser


def query_ids(path: Path) -> np.ndarray:
    """The ids of a queries file, refused in one line if it has no variantid column or no rows."""
    queries = read_id_file(path, ("variantid",))
    if "variantid" not in queries:
        raise DataError(f"{path}: missing column variantid (has {', '.join(map(str, queries.columns))})")
    if queries.empty:
        raise DataError(f"{path}: has no rows; give at least one query product")
    return contract.check_ids(pa.Table.from_pandas(queries[["variantid"]]), "variantid", str(path), unique=False)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.k is not None and args.k < 1:
        raise DataError(f"--k is {args.k}; give a number of candidates >= 1")
    ids = query_ids(args.queries) if args.queries is not None else None  # refused before the models load
    start = time.perf_counter()
    finder = CatalogMatcher.load(args.repo)
    loaded = time.perf_counter()
    if ids is None:
        matches = finder.find_cards(args.cards, args.k)
    else:
        matches = finder.find(ids, args.k, label=str(args.queries))
    write_frame(matches, args.output)
    queries, phases = matches.query_id.nunique(), finder.seconds
    split = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in phases.items())
    log.info(
        f"find: {queries} queries, {len(matches)} candidates scored by the candidate model, "
        f"{int(matches.predicted_match.sum())} predicted matches ({finder.model.rule} at {finder.model.threshold:.4f}) "
        f"-> {args.output} "
        f"(loaded in {loaded - start:.1f} s, found, scored and written in {time.perf_counter() - loaded:.1f} s; "
        f"{split}: {queries / max(phases['search'], 1e-9):,.0f} queries a second "
        f"searched, {len(matches) / max(phases['score'], 1e-9):,.0f} pairs a second scored)"
    )


def run() -> None:
    """The console script's entry point."""
    run_stage(main)


if __name__ == "__main__":
    run()
