"""Copy a model folder with its safetensors weights cast to another float type.

The device kit carries MiniLM's weights as float16 (45 MB; the float32 file's 91 MB would not fit a
call of the device tool), and the GPU checks cast them back to float32 before fine-tuning, as the
CPU runs fine-tune them.

    python benchmarks/cast_weights.py SOURCE_FOLDER TARGET_FOLDER float16|float32
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "model.safetensors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("dtype", choices=["float16", "float32"])
    args = parser.parse_args()
    if not (args.source / WEIGHTS).exists():
        raise SystemExit(f"error: {args.source / WEIGHTS} missing; give a model folder saved with safetensors")
    dtype = getattr(torch, args.dtype)
    shutil.copytree(
        args.source, args.target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(WEIGHTS, "*.md", ".gitattributes")
    )
    weights = load_file(args.source / WEIGHTS)
    save_file({name: value.to(dtype) for name, value in weights.items()}, args.target / WEIGHTS)


if __name__ == "__main__":
    main()
