"""How late this process's event loop runs: every session's frames wait that long.

A blocking call on the loop (a decoder holding the GIL, a synchronous database call) shows
as a sleep that wakes late; the overshoot of a short sleep is what voice_event_loop_lag_seconds
records, a few times a second, while the process serves.
"""

from __future__ import annotations

import asyncio

from sessions_app.process_task import ProcessTask
from voiceproject.metrics import EVENT_LOOP_LAG

INTERVAL_S = 0.25


class EventLoopLagMonitor(ProcessTask):
    """Sleeps `interval_s` again and again and records how late each wake-up came."""

    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        super().__init__()
        self._interval_s = interval_s

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(self._interval_s)
            EVENT_LOOP_LAG.observe(max(0.0, loop.time() - asked - self._interval_s))


lag_monitor = EventLoopLagMonitor()
