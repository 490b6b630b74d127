"""Work over a stream of batches on `MATCHING_THREADS` threads (or processes), results in the stream's order.

The stages read the archive batch by batch; numpy and pyarrow release the GIL in the work on each
batch, so threads overlap one batch's work with the next batch's reading. Work in Python itself
(regexes over Python strings, JSON) holds the GIL, so it goes to as many worker processes instead.
Results come back in input order and each batch's result depends on that batch alone, so the output
is the same bytes on any thread count. A stage's peak memory counts its worker processes
(`matching.stage.peak_memory_gib`).
"""

from __future__ import annotations

import ctypes
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from itertools import chain, islice
from typing import Any, TypeVar

import pyarrow as pa

from matching import THREADS
from matching.errors import StageError
from matching.stage import count_worker_memory

Item = TypeVar("Item")
Result = TypeVar("Result")


def ordered_map(work: Callable[[Item], Result], items: Iterable[Item], threads: int = 0) -> Iterator[Result]:
    """`work(item)` for each item, on up to `threads` threads (default MATCHING_THREADS), yielded in the
    items' order. At most `threads` items are read ahead of the result being consumed, which bounds the
    memory to that many batches in flight."""
    threads = threads or THREADS
    if threads < 2:
        yield from map(work, items)
        return
    with ThreadPoolExecutor(threads) as pool:
        yield from _in_order(pool, work, items, threads)


def in_processes(work: Callable[[Item], Result], items: Iterable[Item], processes: int = 0) -> Iterator[Result]:
    """`work(item)` for each item in up to `processes` worker processes (default MATCHING_THREADS),
    yielded in the items' order, for work in Python that threads cannot share. `work` is a module-level
    function and items and results pickle; the workers are spawned (`spawned_pool`), and at most twice
    `processes` items are in flight. One process, or one item: in this one (a worker's start costs more
    than one item's work)."""
    processes = processes or THREADS
    items = iter(items)
    head = list(islice(items, 2))
    if processes < 2 or len(head) < 2:
        yield from map(work, chain(head, items))
        return
    items = chain(head, items)
    try:
        with spawned_pool(processes) as pool:
            yield from _in_order(pool, work, items, 2 * processes)
    except BrokenProcessPool:
        raise StageError(
            "a worker process stopped before its work was done: a script that calls matching must do so "
            'under `if __name__ == "__main__":` (worker processes import the script), or set MATCHING_THREADS=1'
        ) from None


def spawned_pool(
    processes: int, initializer: Callable[..., object] | None = None, initargs: tuple = ()
) -> ProcessPoolExecutor:
    """`processes` spawned worker processes (a fork would copy the stage's threads' locks, and a GPU
    context), their memory counted in the stage's peak (`count_worker_memory`) when the pool shuts down."""
    context = multiprocessing.get_context("spawn")
    return _MeasuredPool(processes, mp_context=context, initializer=initializer, initargs=initargs)


class _MeasuredPool(ProcessPoolExecutor):
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        count_worker_memory(list(getattr(self, "_processes", None) or {}))
        super().shutdown(wait=wait, cancel_futures=cancel_futures)


def arrow_chunks(values: pa.Array | pa.ChunkedArray, size: int, copy: bool = True) -> Iterator[tuple[int, pa.Array]]:
    """(first row, rows) of each run of at most `size` rows of an Arrow column, runs cut within its
    Arrow chunks. With `copy`, each is a compact copy to send to a worker process (a slice pickles its
    parent's whole buffers); threads can share slices."""
    row = 0
    for chunk in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:
        for start in range(0, len(chunk), size):
            rows = chunk.slice(start, size)
            yield row + start, pa.concat_arrays([rows]) if copy else rows
        row += len(chunk)


@contextmanager
def steps_side_by_side(threads: int = 0) -> Iterator[Executor]:
    """An executor for independent steps of a stage, run side by side on `threads` threads (default
    MATCHING_THREADS); on one thread each step runs when submitted, in this thread, in the order
    written. A step's result depends on its inputs alone, so the outputs are the same either way."""
    threads = threads or THREADS
    if threads < 2:
        yield _InThisThread()
        return
    with ThreadPoolExecutor(threads) as pool:
        yield pool


class _InThisThread(Executor):
    def submit(self, fn: Callable[..., Result], /, *args: Any, **kwargs: Any) -> Future[Result]:
        future: Future[Result] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # raised where the caller asks for the result, as a pool's would be
            future.set_exception(error)
        return future


def release_freed_memory() -> None:
    """Hand the memory freed on worker threads back to the system: glibc keeps each thread's freed
    blocks in that thread's own heap, where other threads' allocations do not reuse them, so a stage
    that ran steps side by side otherwise keeps their peak. A no-op off glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _in_order(pool: Executor, work: Callable[[Item], Result], items: Iterable[Item], ahead: int) -> Iterator[Result]:
    pending: deque[Future[Result]] = deque()
    for item in items:
        pending.append(pool.submit(work, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
