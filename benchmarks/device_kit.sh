#!/usr/bin/env bash
# Packs .device-kit/ (git-ignored): what a lent GPU machine lacks to run benchmarks/gpu_checks.sh.
#
# That machine holds PyTorch, transformers, pandas, scikit-learn... (/work/.library/device/KINDS.md)
# but not LightGBM, RapidFuzz, faiss or dvclive, cannot fetch anything, and takes at most 64 MiB of
# working tree a call. So, here:
#   wheels/      the packages it lacks, at this environment's versions, built for its Python (3.12)
#   minilm/      all-MiniLM-L6-v2 from the PyPI package, its weights stored as float16 (45 MB: the
#                float32 file's 91 MB would not travel); gpu_checks.sh casts them back to float32
#   benchmarks/  a copy of ../shared/benchmarks (a folder beside the checkout does not travel)
#   volume/      for the full-size stages: faiss's wheel (the index stage), params.yaml composed for
#                `-S demo=full`, and REFERENCE_LOCK's dvc.lock if given (a full-size run's, to compare bytes)
#
# The kit is larger than one call carries: each phase carries the folders it reads. The first two fit
# one lent machine's 15 minutes with its start (a cut run keeps the stages it finished):
#   REFERENCE_LOCK=FULL_SIZE_REPO/dvc.lock bash benchmarks/device_kit.sh    # then, with the device tool:
#   run(command="bash benchmarks/gpu_checks.sh encoders", carry=[".device-kit/wheels"], timeout_s=300)
#   run(command="bash benchmarks/gpu_checks.sh volume", carry=[".device-kit/wheels", ".device-kit/volume"],
#       timeout_s=480)
#   run(command="bash benchmarks/gpu_checks.sh offers", carry=[".device-kit/wheels", ".device-kit/minilm",
#       ".device-kit/benchmarks"], timeout_s=540)
#
# Needs the benchmarks extra (`.venv/bin/pip install -e '.[benchmarks]'`: the packaged MiniLM).
# PYTHON_VERSION=3.11 packs wheels for this machine's Python instead (a dry run of gpu_checks.sh here).
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=.device-kit
PY=${VENV:-.venv}/bin/python
# What the stages import beyond the device image's packages: LightGBM, RapidFuzz, and dvclive with
# the parts of DVC it loads (found by importing every stage in an environment of the image's packages).
MISSING=(lightgbm rapidfuzz dvclive dvc dvc-render dvc-studio-client funcy flatten-dict voluptuous pydot
    ruamel.yaml model2vec)

# MiniLM first: the packaged model is the one thing `make setup` does not install.
minilm=$("$PY" -c "import sys; sys.path.insert(0, 'benchmarks'); from real_offers import packaged_minilm; print(packaged_minilm())")
[[ -d ../shared/benchmarks ]] || { echo "error: ../shared/benchmarks missing; the kit carries the real offers" >&2; exit 1; }
# Packed beside the kit and renamed at the end: a failed run leaves the last whole kit, or none.
PACKING=$KIT.partial
rm -rf "$PACKING"
trap 'rm -rf "$PACKING"' EXIT
# Wheels of these installed packages, at this environment's versions, for the device's Python.
download() {
    local folder=$1 package version pinned=()
    shift
    for package in "$@"; do
        version=$("$PY" -m pip show "$package" 2>/dev/null | sed -n 's/^Version: //p' || true)
        [[ -n $version ]] || { echo "error: $package is not installed in ${VENV:-.venv}; run make setup" >&2; exit 1; }
        pinned+=("$package==$version")
    done
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "${PYTHON_VERSION:-3.12}" \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        -d "$folder" "${pinned[@]}"
}
download "$PACKING/wheels" "${MISSING[@]}"
download "$PACKING/volume" faiss-cpu
# What scale.py composes at full size (benchmarks/results/stage_threads ran in such a repository).
"$PY" - "$PACKING/volume/params.yaml" <<'EOF'
import sys
from pathlib import Path

import yaml

from matching import compose_params

overrides = ["demo=full", "train.matchers=[lightgbm]", "train.submit=ensemble"]
params = compose_params.composed(overrides, Path("conf"))
Path(sys.argv[1]).write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False))
EOF
[[ -z ${REFERENCE_LOCK:-} ]] || cp "$REFERENCE_LOCK" "$PACKING/volume/dvc.lock"
"$PY" benchmarks/cast_weights.py "$minilm" "$PACKING/minilm" float16
cp -rL ../shared/benchmarks "$PACKING/benchmarks"
rm -rf "$KIT"
mv "$PACKING" "$KIT"
du -sh "$KIT"/*
du -sh "$KIT"
