"""Each CPU stage on one thread and on more: wall time, peak memory, speed-up, and the same bytes.

In a repository the pipeline has run in (`benchmarks/scale.py --keep REPO` builds one at the real
volumes), reruns each stage of `--stages` alone (`dvc repro --force --single-item`) with
`MATCHING_THREADS` at each count of `--threads`, `--repeat` times, in that order one after another,
each run once the page cache is written back (`sync`).
Reads each run's own timing line (`stage NAME: S s, peak memory G GiB`) and the stage's output hashes
from dvc.lock, and records the median seconds per thread count, the speed-up over the first count and
whether every run wrote the same bytes (`benchmarks/results/stage_threads/<--name>.json`). `--update`
replaces the stages it runs in that record and keeps its others, so that one record holds each stage
as the code now runs it; each stage's figures name the machine and date they were measured on.

    python benchmarks/stage_threads.py --repo REPO --name cpu_full_size_demo
    python benchmarks/stage_threads.py --repo REPO --stages features index --threads 1 2 --repeat 3
    python benchmarks/stage_threads.py --repo REPO --stages index --name cpu_full_size_demo --update
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from results import RESULTS, STAGE_LINE, locked_outputs, machine, record
from scale import USER_ENV

CPU_STAGES = [
    "prepare",
    "embed_text@attributes",
    "embed_text@descriptions",
    "embed_names",
    "embed_photos",
    "features",
    "index",
]


def timed_stage(repo: Path, stage: str, threads: int) -> dict:
    """One forced run of `stage` on `threads` threads: its seconds, peak GiB and output hashes. The page
    cache is written back first: the kernel slows a writer down while earlier runs' outputs (and DVC's
    cache copies of them) are still waiting for the disk, which would time the disk, not the stage."""
    os.sync()
    env = {**USER_ENV, "MATCHING_THREADS": str(threads), "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        ["dvc", "repro", "--force", "--single-item", stage], cwd=repo, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"{stage} on {threads} threads failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    line = [m for m in STAGE_LINE.finditer(result.stdout + result.stderr)][-1]
    return {
        "seconds": float(line["seconds"]),
        "peak_gib": float(line["gib"]),
        "outs": locked_outputs(repo / "dvc.lock")[stage],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help="a repository the pipeline has run in")
    parser.add_argument("--stages", nargs="+", default=CPU_STAGES)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, len(os.sched_getaffinity(0))])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--name", default="latest", help="the record's name: results/stage_threads/NAME.json")
    parser.add_argument("--update", action="store_true", help="replace these stages in the record, keep the rest")
    args = parser.parse_args()
    figures, commands = {}, []
    existing = RESULTS / "stage_threads" / f"{args.name}.json"
    if args.update and existing.exists():
        kept = json.loads(existing.read_text())
        # Each stage keeps the machine it was measured on: an update may run on another one.
        figures = {
            stage: {"machine": kept["machine"], "date": kept["date"], **f}
            for stage, f in kept["results"]["stages"].items()
            if stage not in args.stages
        }
        commands = kept["results"].get("commands", [kept["command"]])
    for stage in args.stages:
        runs = {t: [] for t in args.threads}
        for _ in range(args.repeat):
            for threads in args.threads:
                runs[threads].append(timed_stage(args.repo, stage, threads))
                print(f"{stage} on {threads} threads: {runs[threads][-1]['seconds']:.1f} s", flush=True)
        seconds = {t: statistics.median(r["seconds"] for r in runs[t]) for t in args.threads}
        hashes = [r["outs"] for rs in runs.values() for r in rs]
        figures[stage] = {
            "seconds": {str(t): round(s, 1) for t, s in seconds.items()},
            "peak_gib": {str(t): max(r["peak_gib"] for r in runs[t]) for t in args.threads},
            "speedup": round(seconds[args.threads[0]] / seconds[args.threads[-1]], 2),
            "same_bytes": all(h == hashes[0] for h in hashes),
            "runs": args.repeat,
            "machine": machine(),
            "date": datetime.date.today().isoformat(),
        }
        print(f"{stage}: {figures[stage]}", flush=True)
    order = {stage: n for n, stage in enumerate(CPU_STAGES)}
    figures = dict(sorted(figures.items(), key=lambda item: order.get(item[0], len(order))))
    commands.append(" ".join(["python", *sys.argv]))
    print(f"-> {record('stage_threads', args.name, {'stages': figures, 'commands': commands})}")


if __name__ == "__main__":
    main()
