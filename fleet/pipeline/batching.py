"""BatchQueue: gathers single calls into batches for one model call, as Ray Serve's
``@serve.batch`` does inside a replica. Imports no Ray.

Each ``submit`` (one frame, from whichever camera) waits in the queue; a batch goes to the
handler when ``max_batch_size`` items are waiting or the oldest has waited ``wait_s``. The
handler takes a list and returns a list aligned with it, in which an item may be an exception:
that item's caller gets it raised, the rest of the batch is unaffected. One batch runs at a
time, off the event loop (the model call blocks), so calls keep queueing while it runs. The batch
size and wait can be changed while running (``configure``), which is how the controller tunes
them.

    >>> import asyncio
    >>> async def demo():
    ...     queue = BatchQueue(lambda xs: [x * 2 for x in xs], max_batch_size=4, wait_s=0.01)
    ...     return await asyncio.gather(*(queue.submit(i) for i in range(3)))
    >>> asyncio.run(demo())
    [0, 2, 4]
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fleet.errors import DetectorError

T = TypeVar("T")
R = TypeVar("R")
_MAX_SAMPLES = 10_000


@dataclass
class BatchStats:
    """Batch sizes and queue waits since the last ``take``."""

    sizes: list[int] = field(default_factory=list)
    waits_s: list[float] = field(default_factory=list)  # time each item spent queued

    def take(self) -> tuple[tuple[int, ...], tuple[float, ...]]:
        sizes, waits = tuple(self.sizes), tuple(self.waits_s)
        self.sizes.clear()
        self.waits_s.clear()
        return sizes, waits


class BatchQueue(Generic[T, R]):
    def __init__(self, handler: Callable[[list[T]], Sequence[R | BaseException]],
                 max_batch_size: int = 1, wait_s: float = 0.0):
        self.handler = handler
        self.max_batch_size = max(1, max_batch_size)
        self.wait_s = max(0.0, wait_s)
        self.stats = BatchStats()
        self._pending: list[tuple[T, asyncio.Future[R], float]] = []
        self._arrived: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch")

    def configure(self, max_batch_size: int, wait_s: float) -> None:
        """Takes effect from the next batch."""
        self.max_batch_size = max(1, max_batch_size)
        self.wait_s = max(0.0, wait_s)

    @property
    def queued(self) -> int:
        return len(self._pending)

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        if self._runner is None or self._runner.done():
            self._arrived = asyncio.Event()
            self._runner = loop.create_task(self._run())
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future, time.monotonic()))
        assert self._arrived is not None
        self._arrived.set()
        return await future

    async def _run(self) -> None:
        assert self._arrived is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            if not self._pending:
                continue
            await self._fill()
            batch, self._pending = (self._pending[: self.max_batch_size],
                                    self._pending[self.max_batch_size:])
            if self._pending:
                self._arrived.set()  # more than one batch waited: go round again at once
            await self._call(loop, batch)

    async def _fill(self) -> None:
        """Wait until the batch is full or its oldest item has waited ``wait_s``."""
        deadline = self._pending[0][2] + self.wait_s
        while len(self._pending) < self.max_batch_size:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            assert self._arrived is not None
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=left)
            except asyncio.TimeoutError:
                return

    async def _call(self, loop: asyncio.AbstractEventLoop,
                    batch: list[tuple[T, asyncio.Future[R], float]]) -> None:
        started = time.monotonic()
        items = [item for item, _, _ in batch]
        if len(self.stats.sizes) < _MAX_SAMPLES:
            self.stats.sizes.append(len(batch))
            self.stats.waits_s.extend(started - t for _, _, t in batch)
        answer: Sequence[Any] = ()
        try:
            answer = await loop.run_in_executor(self._executor, self.handler, items)
            results: list[Any] = list(answer)
            if len(results) != len(batch):
                raise DetectorError(f"the batch handler returned {len(results)} results for "
                                    f"{len(batch)} items")
        except Exception as exc:  # noqa: BLE001 - the whole call failed: every item fails
            results = [exc] * len(batch)
        del items, answer  # keep no reference to a frame once its batch is done
        for (_, future, _), result in zip(batch, results, strict=True):
            if future.done():
                continue  # its caller went away (cancelled)
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        batch.clear()
