"""Phone keypad entries: key presses collected until "#" or a pause, then read as one entry.

A caller choosing from a menu presses one key and waits; one typing an order number presses
several and may end with "#". Either way the agent receives the whole entry at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

SUBMIT_KEY = "#"


class Keypad:
    """Collects DTMF tones into entries; `on_entry` receives each completed one."""

    def __init__(self, on_entry: Callable[[str], Awaitable[None]], timeout_s: float) -> None:
        self._on_entry = on_entry
        self._timeout_s = timeout_s
        self._keys: list[str] = []
        self._pause: asyncio.Task[None] | None = None  # waiting for the next key
        self._tasks: set[asyncio.Task[None]] = set()  # pauses, and entries being submitted

    async def press(self, tone: str) -> None:
        self._cancel_pause()
        if tone != SUBMIT_KEY:
            self._keys.append(tone)
            self._pause = asyncio.create_task(self._submit_after_pause())
            self._tasks.add(self._pause)
            self._pause.add_done_callback(self._tasks.discard)
            return
        await self._submit()

    async def _submit_after_pause(self) -> None:
        await asyncio.sleep(self._timeout_s)
        self._pause = None  # submitting now: a next key press starts a new entry
        await self._submit()

    async def _submit(self) -> None:
        entry, self._keys = "".join(self._keys), []
        if entry:
            await self._on_entry(entry)

    def _cancel_pause(self) -> None:
        if self._pause is not None:
            self._pause.cancel()
            self._pause = None

    async def close(self) -> None:
        """Drop an unfinished entry (the caller never confirmed it), and stop its timer."""
        self._keys = []
        self._pause = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
