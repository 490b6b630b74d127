"""Stage `embed_photos`: the main photo, the extra photos pooled to one vector, and every photo set.

See `matching.encoders.photos` for the pooling; the photo sets feed the photo features.
"""

from __future__ import annotations

import argparse
import logging
import tempfile

import numpy as np
import pandas as pd

from matching import config, paths
from matching.data import raw
from matching.data.contract import EXTRA_PHOTOS, MAIN_PHOTO
from matching.encoders.photos import photo_vectors
from matching.npz import write_arrays
from matching.stage import run_stage

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params)
    wanted = np.sort(pd.read_parquet(layout.products, columns=["variantid"])["variantid"].to_numpy(np.int64))
    batches = raw.raw_batches_for(layout.raw_dir(cfg.data.raw_dir), "resnet", [MAIN_PHOTO, EXTRA_PHOTOS], wanted)
    layout.photo_sets.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=layout.photo_sets.parent) as spill:  # unnamed: nothing left if killed
        vectors, sets = photo_vectors(batches, wanted, spill)
        write_arrays({"variantid": wanted, **vectors}, layout.embedding_file("photos"))
        write_arrays(sets, layout.photo_sets)
    log.info(
        f"embed photos: {int((~np.isnan(vectors['main'][:, 0])).sum())} of {len(wanted)} products have a main "
        f"photo, {int((vectors['extra_count'] > 0).sum())} have extra photos"
    )


if __name__ == "__main__":
    run_stage(main)
