"""A process-wide pool of recognition threads that takes jobs in priority order.

Decoding is CPU work that releases the GIL (CTranslate2), so a few threads share one model and
run in parallel. What matters is the order: a caller waiting for their final must never wait
behind someone's partial. So jobs go to the most urgent first (finals, then speculative finals,
then partials), partials only start while a thread would otherwise idle and another stays free
for a final, and the queue has a bound: when it is full the least urgent job is shed.

The pool is shared by every session of the process (each test and each daphne has its own
event loop), so it talks to callers only through asyncio futures resolved thread-safely.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents_app.errors import ProviderOverloaded

logger = logging.getLogger(__name__)


class Priority(enum.IntEnum):
    """Lower runs first."""

    FINAL = 0
    SPECULATIVE = 1
    PARTIAL = 2


@dataclass(order=True)
class _Job:
    priority: int
    order: int
    work: Callable[[], Any] = field(compare=False)
    future: asyncio.Future[Any] = field(compare=False)
    loop: asyncio.AbstractEventLoop = field(compare=False)


class RecognitionPool:
    """`workers` threads running submitted callables, most urgent first; at most `max_queued`
    jobs wait."""

    def __init__(self, workers: int, max_queued: int, name: str = "recognition") -> None:
        if workers < 1 or max_queued < 1:
            raise ValueError("a recognition pool needs at least one worker and one queue place")
        self.workers = workers
        self.max_queued = max_queued
        self._queue: list[_Job] = []
        self._busy = 0
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}-{index}", daemon=True)
            for index in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def could_take_partial(self) -> bool:
        """True when a partial would start at once and still leave a thread free for a final
        (with a single thread: when it idles with nothing queued)."""
        with self._ready:
            free = self.workers - self._busy
            return not self._queue and (free >= 2 or (self.workers == 1 and free == 1))

    def submit(self, priority: Priority, work: Callable[[], Any]) -> asyncio.Future[Any]:
        """Queue `work`; its result (or exception) arrives in the returned future. Cancel the
        future to drop a job that has not started. A full queue sheds its least urgent job
        (partials first, then speculation; the newest of a kind first), or refuses this one
        (ProviderOverloaded: `stt_overloaded`, retryable) when nothing waiting is less urgent,
        so no utterance is ever lost without its caller being told."""
        loop = asyncio.get_running_loop()
        job = _Job(priority, next(self._order), work, loop.create_future(), loop)
        with self._ready:
            self._queue = [queued for queued in self._queue if not queued.future.cancelled()]
            heapq.heapify(self._queue)
            if len(self._queue) >= self.max_queued:
                shed = max(self._queue)
                if shed.priority <= priority:
                    raise ProviderOverloaded(
                        "speech recognition is overloaded: this utterance was not recognised, "
                        "say it again",
                        role="stt",
                    )
                self._queue.remove(shed)
                heapq.heapify(self._queue)
                self._resolve(shed, error=ProviderOverloaded("shed by a busier pool", role="stt"))
            heapq.heappush(self._queue, job)
            self._ready.notify()
        return job.future

    def queued(self) -> int:
        with self._ready:
            return sum(not job.future.cancelled() for job in self._queue)

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                job = heapq.heappop(self._queue)
                if job.future.cancelled():
                    continue
                self._busy += 1
            try:
                result = job.work()
            except Exception as exc:
                self._resolve(job, error=exc)
            else:
                self._resolve(job, result=result)
            finally:
                with self._ready:
                    self._busy -= 1

    @staticmethod
    def _resolve(job: _Job, result: Any = None, error: BaseException | None = None) -> None:
        def settle() -> None:
            if job.future.done():
                return
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(result)

        # A closed event loop (RuntimeError) means nobody waits for this result any more.
        with contextlib.suppress(RuntimeError):
            job.loop.call_soon_threadsafe(settle)
