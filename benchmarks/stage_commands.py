"""The pipeline's stages run by their own commands, in dvc.yaml's order, where DVC is not installed (a
lent GPU machine carries the packages the stages import, not DVC's): each stage's wall time and peak
memory (its own timing line) and the hashes DVC would record for its outputs. Given a `dvc.lock` written
elsewhere (`--lock`), says for each output whether these bytes are the ones it holds: the same results
on another CPU and another thread count.

Makes `--root` a pipeline folder (dvc.yaml, and `--params`: a params.yaml composed where Hydra is, e.g.
by benchmarks/device_kit.sh) and runs there, on `MATCHING_THREADS=--threads`, each stage of `--stages`
(a foreach stage's every item, or one: `embed_text@attributes`). The record is rewritten after each
stage, so that a run cut short keeps what it measured.

    python benchmarks/stage_commands.py --root /tmp/volume --params PARAMS --threads 16 \
        --stages check_params generate_demo prepare embed_text --lock dvc.lock --out OUT.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from results import STAGE_LINE, locked_outputs, record

ROOT = Path(__file__).resolve().parents[1]
_REFERENCE = re.compile(r"\$\{([^}]+)\}")


def interpolated(text: str, params: dict, item: str | None) -> str:
    """`text` with dvc.yaml's `${item}` and `${section.key}` put in, as DVC does."""

    def value(match: re.Match) -> str:
        if match[1] == "item":
            return str(item)
        found: object = params
        for key in match[1].split("."):
            found = found[key]  # type: ignore[index]
        return str(found)

    return _REFERENCE.sub(value, text)


def expanded_stages(dvc_yaml: dict, params: dict) -> dict[str, dict]:
    """Every stage of dvc.yaml by the name DVC gives it (`name@item` for a foreach stage), in file order,
    with its command and output paths interpolated."""
    stages = {}
    for name, stage in dvc_yaml["stages"].items():
        items = stage.get("foreach")
        if isinstance(items, str):  # e.g. ${train.matchers}
            key = _REFERENCE.fullmatch(items)[1]  # type: ignore[index]
            items = params
            for part in key.split("."):
                items = items[part]
        body = stage.get("do", stage)
        for item in items if items is not None else [None]:
            outs = [next(iter(out)) if isinstance(out, dict) else out for out in body.get("outs", [])]
            stages[name if item is None else f"{name}@{item}"] = {
                "cmd": interpolated(body["cmd"], params, item),
                "outs": [interpolated(out, params, item) for out in outs],
            }
    return stages


def chosen(stages: dict[str, dict], names: list[str]) -> list[str]:
    """The stages `names` asks for (a foreach stage's name means all its items), in dvc.yaml's order."""
    unknown = [n for n in names if not any(s == n or s.startswith(f"{n}@") for s in stages)]
    if unknown:
        raise SystemExit(f"error: no stage {', '.join(unknown)} in dvc.yaml; choose from {', '.join(stages)}")
    return [s for s in stages if s in names or s.split("@")[0] in names]


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def output_hash(path: Path, pool: ThreadPoolExecutor) -> str:
    """The hash DVC records for `path`: a file's md5, or a folder's `.dir` hash (the md5 of the sorted
    list of its files' md5s and relative paths, as dvc-data writes it)."""
    if path.is_file():
        return file_md5(path)
    files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    entries = [
        {"md5": md5, "relpath": p.relative_to(path).as_posix()} for p, md5 in zip(files, pool.map(file_md5, files))
    ]
    listing = json.dumps(sorted(entries, key=lambda e: e["relpath"]), sort_keys=True).encode()
    return hashlib.md5(listing).hexdigest() + ".dir"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="the pipeline folder to make (or go on in)")
    parser.add_argument("--params", type=Path, required=True, help="the params.yaml to run with")
    parser.add_argument("--stages", nargs="+", required=True, help="dvc.yaml stage names, in any order")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="MATCHING_THREADS")
    parser.add_argument("--lock", type=Path, help="a dvc.lock to compare the outputs' hashes with")
    parser.add_argument("--out", type=Path, required=True, help="the record")
    args = parser.parse_args()
    args.root.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "dvc.yaml", args.root / "dvc.yaml")
    shutil.copy(args.params, args.root / "params.yaml")
    params = yaml.safe_load(args.params.read_text())
    stages = expanded_stages(yaml.safe_load((ROOT / "dvc.yaml").read_text()), params)
    locked = {p: h for outs in locked_outputs(args.lock).values() for p, h in outs.items()} if args.lock else {}
    env = {
        **os.environ,
        "MATCHING_THREADS": str(args.threads),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
        "DVC_NO_ANALYTICS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    figures: dict[str, dict] = {}
    with ThreadPoolExecutor(args.threads) as pool:
        for name in chosen(stages, args.stages):
            os.sync()  # the last stage's outputs on disk first, as stage_threads.py times a stage
            start = time.perf_counter()
            command = stages[name]["cmd"].replace("python ", f"{sys.executable} ", 1)
            result = subprocess.run(command, shell=True, cwd=args.root, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if result.returncode != 0:
                raise SystemExit(f"{name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
            line = list(STAGE_LINE.finditer(result.stdout + result.stderr))[-1]
            hashes = {out: output_hash(args.root / out, pool) for out in stages[name]["outs"]}
            figures[name] = {
                "seconds": float(line["seconds"]),
                "wall_seconds": round(wall, 1),
                "peak_gib": float(line["gib"]),
                "outs": hashes,
                **({"same_as_lock": {out: locked.get(out) == h for out, h in hashes.items()}} if locked else {}),
            }
            print(f"{name}: {figures[name]['seconds']:.1f} s, {figures[name]['peak_gib']:.2f} GiB", flush=True)
            record("stage_commands", "", {"threads": args.threads, "stages": figures}, out=args.out)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
