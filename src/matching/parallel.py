"""Work over a stream of batches on `MATCHING_THREADS` threads, results in the stream's order.

The stages read the archive batch by batch; numpy and pyarrow release the GIL in the work on each
batch, so threads overlap one batch's work with the next batch's reading. Results come back in
input order and each batch's result depends on that batch alone, so the output is the same bytes on
any thread count.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from matching import THREADS

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
        pending: deque[Future[Result]] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
