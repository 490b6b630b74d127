"""Stage `check_params`: params.yaml through the typed check, before any other stage runs.

Every stage depends on this stage's output, so DVC runs it first whenever params change; a bad value
(an unknown matcher name in `train.matchers`, which reaches a shell command in dvc.yaml, or anything
else `matching.config` refuses) stops the whole DAG here with one line. The output's content never
changes, so a passing check reruns nothing downstream.
"""

from __future__ import annotations

import argparse
import logging

from matching import config, paths
from matching.io import atomic_path
from matching.stage import run_stage

log = logging.getLogger(__name__)

CHECKED = "params.yaml passed matching.config's typed check\n"


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    layout = paths.project()
    cfg = config.load(layout.params)
    with atomic_path(layout.params_checked) as tmp:
        tmp.write_text(CHECKED)
    log.info(f"check_params: matchers {', '.join(cfg.train.matchers)}, submitting {cfg.train.submit}")


if __name__ == "__main__":
    run_stage(main)
