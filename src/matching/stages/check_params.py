"""Stage `check_params`: params.yaml through the typed check, before any other stage runs.

Every stage depends on this stage's output, so DVC runs it first whenever params change; a bad value
(an unknown matcher name in `train.matchers`, which reaches a shell command in dvc.yaml, or anything
else `matching.config` refuses) stops the whole DAG here with one line. A `data.raw_dir` that the demo
generator does not write must hold the archive's files: a missing folder or file is named here, before
DVC meets the missing dependency. The output's content never changes, so a passing check reruns nothing
downstream.
"""

from __future__ import annotations

import argparse
import logging

from matching import config, paths
from matching.data import raw
from matching.encoders.modalities import TEXT_MODALITIES
from matching.io import atomic_path
from matching.stage import run_stage

log = logging.getLogger(__name__)

CHECKED = "params.yaml passed matching.config's typed check\n"


def warn_transformers_on_cpu(cfg: config.Config) -> None:
    """Say before any long work starts that the transformer encoders will run on this machine's CPU."""
    modalities = [m for m in TEXT_MODALITIES if getattr(cfg.embed, m).backend == "sentence-transformers"]
    if not modalities:
        return
    from matching.device import resolve_device

    if resolve_device(cfg.embed.device) == "cpu":
        log.warning(
            f"embed.{' and embed.'.join(modalities)}: sentence-transformers on the CPU (no GPU here): at the "
            "archive's volume that takes hours (docs/performance.md; embed_text logs its estimate once it has "
            "a rate); `-S encoder=static` distils the same models and encodes the texts in minutes"
        )


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params, lightgbm=True)
    raw_dir = layout.raw_dir(cfg.data.raw_dir)
    if raw_dir.resolve() != layout.demo_raw.resolve():  # the demo's folder is generate_demo's output
        raw.check_layout(raw_dir)
    warn_transformers_on_cpu(cfg)
    with atomic_path(layout.params_checked) as tmp:
        tmp.write_text(CHECKED)
    log.info(f"check_params: matchers {', '.join(cfg.train.matchers)}, submitting {cfg.train.submit}")


if __name__ == "__main__":
    run_stage(main)
