"""One playback clock per process: every 20 ms, each playing reply's due frame is released.

A timer per session (an `asyncio.sleep` per frame) costs a heap entry, a future and a wake-up
per frame per session, and its wake-ups drift apart from everyone else's. Here one task ticks
on a fixed 20 ms grid of the loop's clock and, each tick, tells every registered listener the
time; a listener whose next frame (or the end of its playback) is due releases its own sender,
which hands the frame to its session's one ordered send path. The clock never awaits a
session: a slow one (its previous send still in flight) simply is not waiting, and every other
session gets its frame that tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from sessions_app.process_task import ProcessTask

logger = logging.getLogger(__name__)

TICK_S = 0.02


class TickListener(Protocol):
    def on_tick(self, now: float) -> None:
        """The clock's time now; must not block (release a waiter at most)."""


class PlaybackClock(ProcessTask):
    """Ticks every `interval_s` while anything is registered; `time` is its clock (the running
    loop's by default). A clock built with `ticking=False` never starts a task: a test calls
    `tick()` itself, with a fake `time`."""

    def __init__(
        self,
        interval_s: float = TICK_S,
        *,
        time: Callable[[], float] | None = None,
        ticking: bool = True,
    ) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._time = time
        self._ticking = ticking
        self._listeners: dict[TickListener, None] = {}  # insertion-ordered set
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wanted: asyncio.Event | None = None

    def now(self) -> float:
        return self._time() if self._time is not None else asyncio.get_running_loop().time()

    def register(self, listener: TickListener) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # listeners of a loop that has gone cannot be woken
            self._loop, self._listeners, self._wanted = loop, {}, asyncio.Event()
        self._listeners[listener] = None
        self._wanted.set()
        if self._ticking:
            self.ensure_running()

    def unregister(self, listener: TickListener) -> None:
        self._listeners.pop(listener, None)

    def __len__(self) -> int:
        return len(self._listeners)

    def tick(self) -> None:
        """Tell every listener the time (those registered during the tick wait for the next)."""
        now = self.now()
        for listener in list(self._listeners):
            try:
                listener.on_tick(now)
            except Exception:  # one broken listener must not silence every other session
                logger.exception("a playback failed on the clock's tick")
                self.unregister(listener)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            if not self._listeners:
                self._wanted.clear()
                await self._wanted.wait()
                due = loop.time()
            self.tick()
            due += self.interval_s
            now = loop.time()
            if due < now:  # the loop stalled: tick at once, then on a fresh grid, no burst
                due = now
            await asyncio.sleep(due - now)


playback_clock = PlaybackClock()
