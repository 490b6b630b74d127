"""Stage `index`: the catalog's nearest-neighbour index over the retrieval vectors (`retrieval.blocks`)."""

from __future__ import annotations

import argparse
import logging

from matching import config, paths
from matching.retrieval.index import CatalogIndex
from matching.retrieval.vectors import read_catalog
from matching.stage import run_stage

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params)
    ids, vectors = read_catalog(layout, cfg.retrieval.blocks)
    retrieval = cfg.retrieval
    index = CatalogIndex.build(
        ids, vectors, retrieval.lists, retrieval.encoding, cfg.seed, {"blocks": retrieval.blocks}
    )
    index.save(layout.retrieval_index)
    log.info(
        f"index {index.settings['factory']}: {len(ids):,} products x {vectors.shape[1]} dims "
        f"({'+'.join(retrieval.blocks)})"
    )


if __name__ == "__main__":
    run_stage(main)
