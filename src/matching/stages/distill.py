"""Stage `distill@{attributes,descriptions}`: the modality's sentence-transformer distilled into static
token vectors, for `encoder=static`.

The model runs once over its vocabulary; the result is a cached DVC output, so it is distilled again
only when the model or `embed.static` change. With another backend the stage writes only a marker
(the same bytes every time: nothing downstream reruns because of it).
"""

from __future__ import annotations

import argparse
import logging
import shutil

from matching import config, paths
from matching.encoders.modalities import TEXT_MODALITIES
from matching.encoders.static import UNUSED, distill
from matching.io import write_json
from matching.stage import run_stage

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modality", choices=TEXT_MODALITIES)
    args = parser.parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params)
    settings = getattr(cfg.embed, args.modality)
    folder = layout.static_model(args.modality)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if settings.backend != "static":
        write_json({"static": False}, folder / UNUSED)
        log.info(f"distill {args.modality}: backend {settings.backend}, nothing to distil")
        return
    static = cfg.embed.static
    distill(settings.model, static.dims, static.sif_coefficient, cfg.embed.device, folder)
    log.info(f"distill {args.modality}: {settings.model} -> {folder} ({static.dims} dims)")


if __name__ == "__main__":
    run_stage(main)
