"""`matching-find` (or `python -m matching.retrieval`): find catalog products' matches with a trained repository.

Reads query products' ids (a `variantid` column; parquet or CSV), takes each one's `--k` nearest
other catalog products from the repository's index (`dvc repro index`), scores those pairs with its
submitted pair model, and writes `query_id, candidate_id, rank, ann_score, match_probability` (CSV
or parquet, by the output's suffix), each query's candidates ranked by the probability. Queries
are products of the catalog the index was built over (`data.raw_dir`). Bad input stops with one
line that says what to fix.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pyarrow as pa

from matching.data import contract
from matching.io import DataError, run_stage, write_frame
from matching.retrieval.matches import CatalogMatcher
from matching.scoring.command import read_id_file

log = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="matching-find", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1]
    )
    parser.add_argument("queries", type=Path, help="query products: parquet or CSV with a column variantid")
    parser.add_argument("--output", type=Path, required=True, help="where to write the matches: .csv or .parquet")
    parser.add_argument("--k", type=int, default=None, help="candidates a query (default: retrieval.k of params.yaml)")
    parser.add_argument(
        "--repo", type=Path, default=None, help="the trained repository (default: the one around the working directory)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.k is not None and args.k < 1:
        raise DataError(f"--k is {args.k}; give a number of candidates >= 1")
    queries = read_id_file(args.queries, ("variantid",))
    if "variantid" not in queries:
        raise DataError(f"{args.queries}: missing column variantid (has {', '.join(map(str, queries.columns))})")
    if queries.empty:
        raise DataError(f"{args.queries}: has no rows; give at least one query product")
    ids = contract.check_ids(pa.Table.from_pandas(queries[["variantid"]]), "variantid", str(args.queries), unique=False)
    start = time.perf_counter()
    finder = CatalogMatcher.load(args.repo)
    loaded = time.perf_counter()
    matches = finder.find(ids, args.k, label=str(args.queries))
    write_frame(matches, args.output)
    log.info(
        f"find: {matches.query_id.nunique()} queries, {len(matches)} candidates scored by {finder.matcher.model} "
        f"-> {args.output} (loaded in {loaded - start:.1f} s, found and scored in {time.perf_counter() - loaded:.1f} s)"
    )


def run() -> None:
    """The console script's entry point."""
    run_stage(main)


if __name__ == "__main__":
    run()
