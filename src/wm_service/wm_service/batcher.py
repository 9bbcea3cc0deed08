"""Dynamic batching: requests that arrive within a short window run as one model call.

The first request of a batch opens a window of `window_s`; everything that arrives in it (and
whatever queued up while the model was busy) joins, up to `max_batch` rows. The batch runs on
the worker executor (one thread: the model is not shared between threads) and each caller
gets its own row back, or the exception of the call. `max_batch` 1 is one request per call.

asyncio only; no web framework here.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from typing import Any, Callable, List, Optional, Sequence, Tuple


class BatcherStopped(RuntimeError):
    pass


class DynamicBatcher:
    def __init__(self, run_batch: Callable[[Sequence[Any]], Sequence[Any]], executor: Executor,
                 window_s: float = 0.002, max_batch: int = 64,
                 on_batch: Optional[Callable[[int, float, float], None]] = None):
        """run_batch(items) -> one result per item, in order. on_batch(size, oldest wait
        [s], call time [s]) after every call (metrics)."""
        if max_batch < 1 or window_s < 0.0:
            raise ValueError("max_batch must be >= 1 and window_s >= 0")
        self._run_batch = run_batch
        self._executor = executor
        self.window_s = float(window_s)
        self.max_batch = int(max_batch)
        self._on_batch = on_batch
        self._queue: Optional[asyncio.Queue] = None
        self._task: Optional[asyncio.Task] = None
        self.batches = 0
        self.items = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        while self._queue is not None and not self._queue.empty():
            _, fut, _ = self._queue.get_nowait()
            if not fut.done():
                fut.set_exception(BatcherStopped("the service is shutting down"))

    async def submit(self, item: Any) -> Any:
        """The result of `item`'s row (raises what the batch call raised)."""
        if not self.running:
            raise BatcherStopped("the batcher is not running")
        fut = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, fut, time.perf_counter()))
        return await fut

    async def _collect(self) -> List[Tuple[Any, asyncio.Future, float]]:
        batch = [await self._queue.get()]
        deadline = time.perf_counter() + self.window_s
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            left = deadline - time.perf_counter()
            if left <= 0.0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), left))
            except asyncio.TimeoutError:
                break
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            live = [b for b in batch if not b[1].done()]   # callers that gave up: skip
            if not live:
                continue
            t0 = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch,
                                                     [b[0] for b in live])
                if len(results) != len(live):
                    raise RuntimeError("batch call returned %d results for %d items"
                                       % (len(results), len(live)))
            except Exception as e:  # noqa: BLE001 - every caller gets the error
                for _, fut, _ in live:
                    if not fut.done():
                        fut.set_exception(e)
            else:
                for (_, fut, _), r in zip(live, results):
                    if not fut.done():
                        fut.set_result(r)
            self.batches += 1
            self.items += len(live)
            if self._on_batch is not None:
                self._on_batch(len(live), t0 - min(b[2] for b in live),
                               time.perf_counter() - t0)
