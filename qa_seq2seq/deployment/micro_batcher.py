"""Micro-batching: requests that wait while the model is busy, with the same grouping key, are
answered together in one call. The batcher knows only the key; what a call does is its caller's.
Runs on one asyncio event loop: its queue needs no lock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from qa_seq2seq.deployment.requests import BadRequest


@dataclass
class Job:
    """One request's items for one key, and the future its caller awaits."""

    key: Hashable
    items: list[Any]
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Queue ``submit(key, items)`` calls and answer them with ``run(key, items)``: the oldest
    waiting job's key first, with every other waiting job of that key, up to ``max_batch`` items
    a call. ``max_queue`` jobs may wait at once (more: 503); each waits at most ``timeout``
    seconds (then 503; a call already running finishes, its answer dropped)."""

    def __init__(self, run: Callable[[Hashable, list[Any]], Awaitable[list[Any]]],
                 max_batch: int, max_queue: int = 1024, timeout: float = 30.0):
        self.run, self.max_batch = run, max_batch
        self.max_queue, self.timeout = max_queue, timeout
        self.queued = 0  # jobs submitted and not yet answered
        self.calls = 0  # calls of ``run`` made
        self.waiting: list[Job] = []
        self.wakeup: asyncio.Event | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The worker that makes the calls, for as long as the context lasts."""
        self.wakeup = asyncio.Event()
        worker = asyncio.create_task(self._work())
        try:
            yield
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def submit(self, key: Hashable, items: list[Any]) -> list[Any]:
        """``items``' results, in order, from a call that may hold other jobs' items too."""
        if self.queued >= self.max_queue:
            raise BadRequest(f"busy: {self.queued} requests are waiting; retry shortly",
                             HTTPStatus.SERVICE_UNAVAILABLE, retry_after=1)
        job = Job(key, items, asyncio.get_running_loop().create_future())
        self.queued += 1
        self.waiting.append(job)
        self.wakeup.set()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.timeout)
        except asyncio.TimeoutError:
            job.future.cancel()  # the worker skips it
            raise BadRequest(f"not answered within {self.timeout:g} s: the server is "
                             "overloaded; retry shortly", HTTPStatus.SERVICE_UNAVAILABLE,
                             retry_after=max(1, round(self.timeout))) from None
        finally:
            self.queued -= 1

    async def _work(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while batch := self._next_batch():
                await self._call(batch)

    def _next_batch(self) -> list[Job]:
        self.waiting = [job for job in self.waiting if not job.future.done()]
        if not self.waiting:
            return []
        key, batch, size = self.waiting[0].key, [], 0
        for job in self.waiting:
            if job.key == key and (not batch or size + len(job.items) <= self.max_batch):
                batch.append(job)
                size += len(job.items)
        taken = {id(job) for job in batch}
        self.waiting = [job for job in self.waiting if id(job) not in taken]
        return batch

    async def _call(self, batch: list[Job]) -> None:
        self.calls += 1
        try:
            results = await self.run(batch[0].key, [item for job in batch for item in job.items])
        except Exception as e:  # reported to each waiting caller, not raised in the worker
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(e)
            return
        for job in batch:
            mine, results = results[:len(job.items)], results[len(job.items):]
            if not job.future.done():
                job.future.set_result(mine)
