"""Where the benchmark scripts keep their figures: `benchmarks/results/<script>/<name>.json`, each file a
record of one run: the script, its command line, the machine, the date and the figures. The tables in
docs/ are generated from these files (`python benchmarks/tables.py`), never typed."""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import platform
import re
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from matching import cpu_info

RESULTS = Path(__file__).resolve().parent / "results"
# The line each stage ends with (matching.stage): its wall time and peak memory.
STAGE_LINE = re.compile(r"^stage (?P<stage>.+?): (?P<seconds>[\d.]+) s, peak memory (?P<gib>[\d.]+) GiB$", re.M)


def machine() -> dict:
    """The CPU's model and the cores this process may use, and the GPU torch sees, if any."""
    cpu = cpu_info("model name") or platform.processor() or platform.machine()
    described = {"cpu": cpu, "cores": len(os.sched_getaffinity(0))}
    if "torch" in sys.modules:  # only a script that uses torch pays for asking it
        torch = sys.modules["torch"]
        if torch.cuda.is_available():
            described["gpu"] = torch.cuda.get_device_name(0)
    return described


def locked_outputs(lock: Path) -> dict[str, dict[str, str]]:
    """Each stage of a dvc.lock and its outputs' hashes, as `dvc repro` recorded them."""
    stages = yaml.safe_load(lock.read_text())["stages"]
    return {name: {out["path"]: out.get("md5", "") for out in stage.get("outs", [])} for name, stage in stages.items()}


def record(script: str, name: str, results: dict, out: Path | None = None) -> Path:
    """Write a run's figures with what produced them; `out` overrides the place (default
    `results/<script>/<name>.json`)."""
    path = out or RESULTS / script / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "script": f"benchmarks/{script}.py",
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "date": datetime.date.today().isoformat(),
        "results": results,
    }
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return path


class _Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy."""

    def __init__(self, terminal):
        self.terminal, self.kept = terminal, io.StringIO()

    def write(self, text: str) -> int:
        self.kept.write(text)
        return self.terminal.write(text)

    def flush(self) -> None:
        self.terminal.flush()


def run_recorded(script: str, main: Callable[[], dict | None]) -> None:
    """Run a script's `main` and record what it printed (its tables) as `printed`, with the figures it
    returns, if any (for a generated table), under the name in the environment variable RESULT_NAME
    (default `latest`). A run that fails records nothing; a worker process the script starts for itself
    (`--library` here) is not recorded."""
    if "--library" in sys.argv:
        main()
        return
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        figures = main() or {}
    path = record(script, os.environ.get("RESULT_NAME", "latest"), {"printed": tee.kept.getvalue(), **figures})
    print(f"-> {path}")


def records(script: str) -> list[dict]:
    """Every record a script wrote, in file name order, each with its `name` (the file's)."""
    return [{**json.loads(path.read_text()), "name": path.stem} for path in sorted((RESULTS / script).glob("*.json"))]
