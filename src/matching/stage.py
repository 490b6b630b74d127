"""A stage's entry point: logging set up, bad input or setup as one line and exit status 2, and a
last line of the stage's wall time and peak memory."""

from __future__ import annotations

import logging
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from matching.errors import StageError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def configure_logging() -> None:
    """Progress and summaries go through `logging` to stdout, in order with any other output; the level
    is the environment variable MATCHING_LOG_LEVEL (DEBUG, INFO, the default, WARNING or ERROR)."""
    level = os.environ.get("MATCHING_LOG_LEVEL", "INFO").upper()
    if level not in LOG_LEVELS:
        raise StageError(f"MATCHING_LOG_LEVEL is {level!r}; use one of {', '.join(LOG_LEVELS)}")
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stdout, force=True)


_with_workers_kib = 0  # the most this process and its workers can have held at once, pool by pool


def count_worker_memory(pids: list[int]) -> None:
    """Count a pool of worker processes that is shutting down in the peak memory: this process's peak
    so far plus each worker's. A worker's own rusage counts the parent's memory it was forked from
    before its exec; its /proc high-water mark is the worker's alone."""
    global _with_workers_kib
    workers = sum(_high_water_kib(str(pid)) for pid in pids)
    _with_workers_kib = max(_with_workers_kib, _high_water_kib("self") + workers)


def peak_memory_gib() -> float:
    """Peak memory of this process and the worker processes it started: its own peak, or, while a pool
    of workers ran, its own peak so far plus each worker's peak, whichever is more (an upper bound:
    the peaks need not coincide). Off Linux: this process's own peak."""
    own = _high_water_kib("self") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (
        1 if sys.platform.startswith("linux") else 1024
    )
    return max(own, _with_workers_kib) / 2**20


def _high_water_kib(pid: str) -> int:
    """A process's peak resident memory (KiB) from /proc, 0 where that cannot be read."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith("VmHWM:")), 0)


def run_stage(main: Callable[[list[str] | None], None]) -> None:
    """Run a stage's main; bad input or setup becomes one line on stderr and exit status 2.

    A finished stage ends with one line of its wall time and peak memory, its worker processes
    included (benchmarks/scale.py reads it).
    """
    start = time.perf_counter()
    # Arrow's default allocator (mimalloc) keeps freed pages for reuse; the system one gives them
    # back, which keeps a stage that streams a multi-GB file at the memory of one batch.
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        configure_logging()
        main(None)
    except StageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except (MemoryError, RuntimeError) as error:
        # torch reports a failed allocation on the CPU as a RuntimeError of its allocator
        if isinstance(error, RuntimeError) and "can't allocate memory" not in str(error):
            raise
        print(
            f"error: out of memory ({peak_memory_gib():.1f} GiB held at the peak); free memory, or ask for less "
            "(fewer rows, a smaller --k or batch)",
            file=sys.stderr,
        )
        sys.exit(2)
    peak_gib = peak_memory_gib()  # its worker processes (Python string work, tokenising) included
    spec = getattr(sys.modules["__main__"], "__spec__", None)  # `python -m matching.x` runs as __main__
    module = (spec.name if spec else main.__module__).removesuffix(".__main__").removesuffix(".command")
    stage = " ".join([module.rsplit(".", 1)[-1]] + sys.argv[1:])
    print(f"stage {stage}: {time.perf_counter() - start:.1f} s, peak memory {peak_gib:.2f} GiB")
