"""What a saved model folder holds, by size and SHA-256: written when the models are saved and checked
before any of them is loaded. A truncated LightGBM file crashes the process inside LightGBM, and a
missing fold file would leave the others to score alone: both are refused here in one line."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from matching.errors import DataError
from matching.io import write_json

MANIFEST = "manifest.json"


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def write_manifest(folder: Path, names: Iterable[str]) -> None:
    """Record the size and digest of each named file of `folder`."""
    entries = {name: {"bytes": (folder / name).stat().st_size, "sha256": digest(folder / name)} for name in names}
    write_json({"files": entries}, folder / MANIFEST)


def check_manifest(folder: Path, stage: str) -> list[str]:
    """The names the manifest records, each present with its recorded size and digest; else one line that
    names the file and says to rerun `stage`."""
    path = folder / MANIFEST
    if not path.exists():
        raise DataError(f"{folder}: no {MANIFEST} (saved by an older version or not at all); rerun `dvc repro {stage}`")
    try:
        entries = json.loads(path.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{path}: not a readable manifest; rerun `dvc repro {stage}`") from None
    for name, expected in entries.items():
        file = folder / name
        if not file.exists():
            raise DataError(f"{file}: missing (the manifest lists it); rerun `dvc repro {stage}`")
        if file.stat().st_size != expected["bytes"] or digest(file) != expected["sha256"]:
            raise DataError(f"{file}: changed since it was saved (size or digest differs); rerun `dvc repro {stage}`")
    return list(entries)
