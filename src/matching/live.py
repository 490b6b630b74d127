"""dvclive's logger as the stages use it: metrics, plot data and curves in dvclive's folder layout
(`metrics.json`, `plots/metrics/*.tsv`, `plots/sklearn/*.json`, `plots/custom/*.json`), declared in the
project's dvc.yaml rather than in one dvclive writes."""

from __future__ import annotations

from pathlib import Path

from dvclive import Live


class StageLive(Live):
    """dvclive's logger without its DVC integration: the stage already runs inside DVC, and dvc.yaml
    declares what is shown. That integration opens the repository for every logger and, in dvclive
    3.49, fails in a git repository without a commit (SCMError from get_rev), where `dvc repro` runs."""

    def _init_dvc(self) -> None:
        pass


def stage_live(folder: Path) -> Live:
    """A logger writing to `folder` (cleared first): no dvc.yaml of its own, no experiment saved, no report."""
    return StageLive(dir=str(folder), dvcyaml=None, save_dvc_exp=False, report=None)
