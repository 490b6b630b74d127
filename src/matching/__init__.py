"""Multimodal product matching for the Ozon E-CUP 2024 archive.

Threads are one setting, `MATCHING_THREADS` (default: the cores this process may run on), read here
before any stage imports numpy, torch or LightGBM: LightGBM, torch and the TF-IDF workers take
`THREADS`; results are the same bytes on any count (tests/test_trust.py), so it is an environment
variable, not a param that would rerun stages.
"""

import os
import platform
import sys
from typing import NoReturn


def _refuse(message: str) -> NoReturn:
    """A bad setting read at import, before a stage's entry point runs: one line and exit status 2, as
    `matching.stage.run_stage` ends bad input."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _thread_count() -> int:
    cores = len(os.sched_getaffinity(0))
    value = os.environ.get("MATCHING_THREADS", "").strip()
    if not value:
        return cores
    if not value.isdigit() or int(value) < 1:
        _refuse(f"MATCHING_THREADS is {value!r}; use a whole number of threads >= 1 (this machine: {cores} cores)")
    return int(value)


THREADS = _thread_count()


def _small_work_rows() -> int:
    value = os.environ.get("MATCHING_SMALL_WORK_ROWS", "100000").strip()
    if not value.isdigit():
        _refuse(f"MATCHING_SMALL_WORK_ROWS is {value!r}; use a whole number of rows >= 0")
    return int(value)


# Below this many rows a fit runs on one thread: its parallel regions are too short to pay for waking
# a sleeping thread (the demo's LightGBM fit ran faster on one passive thread than on two), and one
# thread leaves the other cores to whatever shares the machine. MATCHING_SMALL_WORK_ROWS=0 runs every
# fit on `THREADS` (the trust tests do, to compare several threads with one).
SMALL_WORK_ROWS = _small_work_rows()


def threads_for(rows: int) -> int:
    """Threads for a fit over `rows` rows: `THREADS`, or one for small work."""
    return THREADS if rows >= SMALL_WORK_ROWS else 1


os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(THREADS)
# OpenMP threads (LightGBM, torch) that wait at a barrier sleep instead of spinning: with another
# process on the cores a spinning thread burns the slice its descheduled sibling needs, and a stage
# slows far more than its share of the cores (benchmarks/sharing.py measures it).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# numpy's BLAS and LAPACK (OpenBLAS: the lexical encoder's SVD, photo pooling) run on one thread in every
# stage, whatever the machine: a multi-threaded OpenBLAS gives other low-order bits with another thread
# count, so outputs and dvc.lock would change from machine to machine. That work is small.
os.environ["OPENBLAS_NUM_THREADS"] = "1"


def cpu_info(field: str) -> str:
    """A field of the first CPU in /proc/cpuinfo ("" where there is none, or no such file)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            line = next((line for line in cpuinfo if line.split(":", 1)[0].strip() == field), "")
    except OSError:
        return ""
    return line.split(":", 1)[1].strip() if ":" in line else ""


def _has_avx2() -> bool:
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    flags = cpu_info("flags").split()
    return "avx2" in flags and "fma" in flags


# OpenBLAS picks its kernels by CPU at load, and the SkylakeX (AVX-512) kernels give the SVD other
# low-order bits than the Haswell (AVX2) ones: pin the AVX2 kernels on every x86-64 CPU that has them,
# so that a clone on any such machine reproduces what numpy computes. (torch's MKL picks its own kernels
# by CPU model: docs/validation.md says which stages that reruns.) A value the user set is kept.
if _has_avx2():
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
# torch's matrix products run MKL, whose AVX-512 kernels split a product by the thread count: the networks'
# weights then differ in the last bits between thread counts. MKL's strict reproducible mode keeps the
# kernels it picks for the CPU (AUTO) and the same bits on any thread count. A value the user set is kept.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
