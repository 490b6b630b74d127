"""Stage `embed_names`: the archive's ready `name_bert_64` vectors for the prepared products."""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pandas as pd

from matching import config, paths
from matching.data import raw
from matching.encoders.names import name_vectors
from matching.npz import write_arrays
from matching.stage import run_stage

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params)
    wanted = pd.read_parquet(layout.products, columns=["variantid"])["variantid"].to_numpy(np.int64)
    batches = raw.raw_batches_for(layout.raw_dir(cfg.data.raw_dir), "text_and_bert", ["name_bert_64"], wanted)
    vectors = name_vectors(batches, wanted)
    write_arrays({"variantid": wanted, "vectors": vectors}, layout.embedding_file("names"))
    log.info(f"embed names: {int((~np.isnan(vectors[:, 0])).sum())} of {len(wanted)} products have name_bert_64")


if __name__ == "__main__":
    run_stage(main)
