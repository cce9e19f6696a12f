"""How far ahead of real time a caller's audio may run.

A microphone produces audio at real time; a client sending faster (a file, a flood) would
otherwise queue recognition work without limit and slow every session of the process. Audio
beyond AUDIO_AHEAD_BUDGET_MS ahead of the wall clock (counted from the session's first frame)
is dropped, and the caller told at most once per `warn_every_s`.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class AudioBudget:
    """Admits caller audio while it stays within `ahead_ms` of real time."""

    def __init__(
        self,
        ahead_ms: float,
        *,
        warn_every_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ahead_ms = ahead_ms
        self.dropped_ms = 0.0
        self._warn_every_s = warn_every_s
        self._clock = clock
        self._started: float | None = None
        self._admitted_ms = 0.0
        self._warned_at: float | None = None

    def admit(self, duration_ms: float) -> bool:
        """Whether audio of this duration, arriving now, is within the budget (and counted)."""
        now = self._clock()
        if self._started is None:
            self._started = now
        elapsed_ms = (now - self._started) * 1000
        if self._admitted_ms + duration_ms - elapsed_ms > self.ahead_ms:
            self.dropped_ms += duration_ms
            return False
        self._admitted_ms += duration_ms
        return True

    def should_warn(self) -> bool:
        """Whether to tell the caller about dropped audio now (not once per frame)."""
        now = self._clock()
        if self._warned_at is not None and now - self._warned_at < self._warn_every_s:
            return False
        self._warned_at = now
        return True
