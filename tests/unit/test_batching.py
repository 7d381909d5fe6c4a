"""BatchQueue, the in-actor batching of detector calls: sizes, waits, failures, tuning."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from fleet.pipeline.batching import BatchQueue

pytestmark = pytest.mark.timeout(30)


class Recorder:
    """A handler that records each batch it is given, optionally slow or failing per item."""

    def __init__(self, delay_s: float = 0.0, fail: frozenset[int] = frozenset()):
        self.batches: list[list[int]] = []
        self.delay_s, self.fail = delay_s, fail
        self.threads: set[str] = set()

    def __call__(self, items: list[int]) -> list[object]:
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)
        return [ValueError(f"bad {i}") if i in self.fail else i * 10 for i in items]


def run(coro):
    return asyncio.run(coro)


def test_waiting_calls_go_in_one_batch_up_to_the_size():
    handler = Recorder()

    async def main():
        queue = BatchQueue(handler, max_batch_size=4, wait_s=0.05)
        return await asyncio.gather(*(queue.submit(i) for i in range(10)))

    assert run(main()) == [i * 10 for i in range(10)]
    assert [len(b) for b in handler.batches] == [4, 4, 2]
    assert sum(handler.batches, []) == list(range(10))  # order kept
    assert all(name.startswith("batch") for name in handler.threads)  # off the event loop


def test_a_lone_call_waits_at_most_the_wait_time():
    handler = Recorder()

    async def main():
        queue = BatchQueue(handler, max_batch_size=8, wait_s=0.05)
        started = time.monotonic()
        result = await queue.submit(1)
        return result, time.monotonic() - started

    result, took = run(main())
    assert result == 10 and handler.batches == [[1]]
    assert took < 5  # flushed by the wait, not stuck until the batch fills


def test_one_items_failure_fails_only_that_item():
    handler = Recorder(fail=frozenset({2}))

    async def main():
        queue = BatchQueue(handler, max_batch_size=4, wait_s=0.05)
        return await asyncio.gather(*(queue.submit(i) for i in range(4)),
                                    return_exceptions=True)

    results = run(main())
    assert results[0] == 0 and results[1] == 10 and results[3] == 30
    assert isinstance(results[2], ValueError) and len(handler.batches) == 1


def test_a_handler_that_raises_fails_its_batch_and_the_queue_goes_on():
    calls = []

    def handler(items):
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("model crashed")
        return items

    async def main():
        queue = BatchQueue(handler, max_batch_size=2, wait_s=0.01)
        first = await asyncio.gather(queue.submit(1), queue.submit(2), return_exceptions=True)
        second = await queue.submit(3)
        return first, second

    first, second = run(main())
    assert all(isinstance(r, RuntimeError) for r in first) and second == 3


def test_calls_queue_while_a_batch_runs_and_the_size_can_change():
    handler = Recorder(delay_s=0.1)

    async def main():
        queue = BatchQueue(handler, max_batch_size=1, wait_s=0.0)
        first = asyncio.ensure_future(queue.submit(0))
        await asyncio.sleep(0.02)  # the first batch is running now
        queue.configure(max_batch_size=8, wait_s=0.0)
        rest = [asyncio.ensure_future(queue.submit(i)) for i in range(1, 6)]
        await asyncio.sleep(0)
        assert queue.queued == 5
        await asyncio.gather(first, *rest)
        return queue.stats.take()

    sizes, waits = run(main())
    assert handler.batches == [[0], [1, 2, 3, 4, 5]]
    assert sizes == (1, 5) and len(waits) == 6 and all(w >= 0 for w in waits)
