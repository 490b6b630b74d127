"""`matching-real-data FOLDER [-S key=value ...]`: run the pipeline on a folder in the archive's format
as a DVC experiment, with the settings that fit the data's size.

The folder is checked first (a missing folder or file named in one line). Then `dvc exp run` gets
`data=ozon` and `data.raw_dir=FOLDER`, the matcher settings of its size (`volume=full` from
FULL_VOLUME_PAIRS train pairs, else `volume=small`) and the retrieval blocks of the modalities it has
(no photo rows: no `photos` block). An `-S` the user gives for the same key wins; `--dry-run` prints
the command instead of running it.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from matching import paths
from matching.data import raw
from matching.stage import run_stage

log = logging.getLogger(__name__)

# About a million pairs is what conf/volume/full.yaml is tuned for; below this the small settings fit.
FULL_VOLUME_PAIRS = 200_000
DEFAULT_BLOCKS = ("names", "attributes", "photos")


def rows(path: Path) -> int:
    """Rows of a parquet file, from its footer alone."""
    return pq.ParquetFile(path).metadata.num_rows


def size_overrides(raw_dir: Path) -> dict[str, str]:
    """The overrides the folder's contents call for: its volume and the retrieval blocks it can fill."""
    volume = "full" if rows(raw_dir / "train.parquet") >= FULL_VOLUME_PAIRS else "small"
    photos = sum(rows(path) for path in raw.product_file_paths(raw_dir, "resnet"))
    blocks = [block for block in DEFAULT_BLOCKS if block != "photos" or photos > 0]
    return {"volume": volume, "retrieval.blocks": f"[{','.join(blocks)}]"}


def experiment_command(raw_dir: Path, user_overrides: list[str]) -> list[str]:
    """`dvc exp run` with the data, its size's settings and the user's overrides (which win)."""
    chosen = {"data": "ozon", "data.raw_dir": str(raw_dir), **size_overrides(raw_dir)}
    given = {override.split("=", 1)[0] for override in user_overrides}
    settings = [f"{key}={value}" for key, value in chosen.items() if key not in given] + user_overrides
    return ["dvc", "exp", "run", *[part for setting in settings for part in ("-S", setting)]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="matching-real-data", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a folder holding the archive's parquet files")
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="key=value for dvc exp run")
    parser.add_argument("--dry-run", action="store_true", help="print the dvc command instead of running it")
    args = parser.parse_args(argv)
    root = paths.find_root()
    folder = args.folder if args.folder.is_absolute() else Path(os.path.relpath(args.folder.resolve(), root))
    raw.check_layout(root / folder)
    command = experiment_command(folder, args.overrides)
    log.info(" ".join(command))
    if not args.dry_run:
        sys.exit(subprocess.run(command, cwd=root).returncode)


def run() -> None:
    """The console script's entry point."""
    run_stage(main)


if __name__ == "__main__":
    run()
