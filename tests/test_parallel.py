"""Work over a stream of batches on several threads: the stream's order, bounded read-ahead."""

import time

import pytest

from matching.parallel import ordered_map


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_results_come_in_the_items_order_whatever_finishes_first(threads):
    def work(item: int) -> int:
        time.sleep(0.01 * (item % 3 == 0))  # every third item finishes last
        return item * item

    assert list(ordered_map(work, range(10), threads)) == [i * i for i in range(10)]


def test_no_more_items_are_read_ahead_than_threads():
    pulled = []

    def items():
        for item in range(20):
            pulled.append(item)
            yield item

    results = ordered_map(lambda item: item, items(), threads=3)
    assert next(results) == 0 and len(pulled) == 3
    assert list(results) == list(range(1, 20))


def test_an_error_in_one_batch_reaches_the_caller():
    def work(item: int) -> int:
        if item == 4:
            raise ValueError("batch 4 is bad")
        return item

    with pytest.raises(ValueError, match="batch 4 is bad"):
        list(ordered_map(work, range(8), threads=2))
