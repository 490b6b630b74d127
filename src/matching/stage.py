"""A stage's entry point: logging set up, bad input or setup as one line and exit status 2, and a
last line of the stage's wall time and peak memory."""

from __future__ import annotations

import logging
import os
import resource
import sys
import time
from collections.abc import Callable

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


def run_stage(main: Callable[[list[str] | None], None]) -> None:
    """Run a stage's main; bad input or setup becomes one line on stderr and exit status 2.

    A finished stage ends with one line of its wall time and peak memory (benchmarks/scale.py
    reads it).
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
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB
    spec = getattr(sys.modules["__main__"], "__spec__", None)  # `python -m matching.x` runs as __main__
    module = (spec.name if spec else main.__module__).removesuffix(".__main__").removesuffix(".command")
    stage = " ".join([module.rsplit(".", 1)[-1]] + sys.argv[1:])
    print(f"stage {stage}: {time.perf_counter() - start:.1f} s, peak memory {peak_gib:.2f} GiB")
