"""Keypad entries: tones collected until "#" or a pause, each entry delivered whole and once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sessions_app.pipeline.keypad import Keypad

PAUSE_S = 0.05  # the keypad's timeout: tiny, so a pause passes quickly
NEVER_S = 3600.0  # a timeout that cannot pass during a test
BOUND_S = 10.0  # a generous bound on waiting for something that must happen


class Entries:
    """An `on_entry` that records entries and lets a test wait for the n-th."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self._changed = asyncio.Event()

    async def __call__(self, entry: str) -> None:
        self.received.append(entry)
        self._changed.set()

    async def wait_for(self, count: int) -> list[str]:
        async def reached() -> None:
            while len(self.received) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(reached(), BOUND_S)
        return self.received


class BlockingEntries:
    """An `on_entry` that holds each submission until released."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []
        self.release = asyncio.Event()
        self._changed = asyncio.Event()

    async def __call__(self, entry: str) -> None:
        self._record(self.started, entry)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self._record(self.cancelled, entry)
            raise
        self._record(self.finished, entry)

    def _record(self, entries: list[str], entry: str) -> None:
        entries.append(entry)
        self._changed.set()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Until `condition` holds (bounded, so a bug fails rather than hangs)."""

        async def holds() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(holds(), BOUND_S)

    async def wait_started(self, count: int) -> None:
        await self.wait_until(lambda: len(self.started) >= count)


async def press_all(keypad: Keypad, tones: str) -> None:
    for tone in tones:
        await keypad.press(tone)


async def test_hash_submits_the_entry_at_once():
    entries = Entries()
    keypad = Keypad(entries, timeout_s=NEVER_S)  # no pause can end this entry
    await press_all(keypad, "12#")
    assert entries.received == ["12"]  # delivered by the "#" press itself
    await keypad.close()
    assert entries.received == ["12"]


async def test_hash_alone_is_no_entry():
    entries = Entries()
    keypad = Keypad(entries, timeout_s=PAUSE_S)
    await keypad.press("#")
    await keypad.press("#")
    await keypad.close()
    assert entries.received == []


async def test_hash_after_a_submitted_entry_is_no_entry():
    entries = Entries()
    keypad = Keypad(entries, timeout_s=NEVER_S)
    await press_all(keypad, "7##")
    await keypad.close()
    assert entries.received == ["7"]


async def test_pause_submits_the_entry():
    entries = Entries()
    keypad = Keypad(entries, timeout_s=PAUSE_S)
    await keypad.press("1")
    assert await entries.wait_for(1) == ["1"]
    await keypad.close()


async def test_pause_submits_every_key_pressed_before_it():
    entries = Entries()
    keypad = Keypad(entries, timeout_s=PAUSE_S)
    await press_all(keypad, "*0AB")  # back to back: no pause between them
    assert await entries.wait_for(1) == ["*0AB"]
    await keypad.close()


async def test_two_entries_separated_by_pauses():
    entries = Entries()
    keypad = Keypad(entries, timeout_s=PAUSE_S)
    await press_all(keypad, "12")
    await entries.wait_for(1)
    await press_all(keypad, "34")
    assert await entries.wait_for(2) == ["12", "34"]
    await keypad.close()
    assert entries.received == ["12", "34"]


async def test_hash_then_pause_entries():
    entries = Entries()
    keypad = Keypad(entries, timeout_s=PAUSE_S)
    await press_all(keypad, "9#")
    await keypad.press("8")
    assert await entries.wait_for(2) == ["9", "8"]
    await keypad.close()


async def test_key_during_a_submission_starts_a_new_entry():
    on_entry = BlockingEntries()
    keypad = Keypad(on_entry, timeout_s=PAUSE_S)
    await keypad.press("1")
    await on_entry.wait_started(1)  # the pause fired: "1" is being submitted
    await keypad.press("2")
    # "#" submits "2" while "1" is still held; that press waits for its own submission.
    submitting = asyncio.create_task(keypad.press("#"))
    await on_entry.wait_started(2)
    assert on_entry.started == ["1", "2"]
    assert on_entry.cancelled == []
    on_entry.release.set()
    await asyncio.wait_for(submitting, BOUND_S)
    # The first submission was not cancelled by the later keys: it completes too.
    await on_entry.wait_until(lambda: len(on_entry.finished) == 2)
    assert sorted(on_entry.finished) == ["1", "2"]
    assert on_entry.cancelled == []
    await keypad.close()


async def test_key_during_a_submission_then_pause():
    on_entry = BlockingEntries()
    keypad = Keypad(on_entry, timeout_s=PAUSE_S)
    await keypad.press("5")
    await on_entry.wait_started(1)
    await keypad.press("6")  # a new entry; its own pause submits it
    await on_entry.wait_started(2)
    assert on_entry.started == ["5", "6"]
    assert on_entry.cancelled == []
    on_entry.release.set()
    await on_entry.wait_until(lambda: len(on_entry.finished) == 2)
    assert sorted(on_entry.finished) == ["5", "6"]
    await keypad.close()


async def test_close_drops_an_unfinished_entry():
    entries = Entries()
    keypad = Keypad(entries, timeout_s=PAUSE_S)
    await press_all(keypad, "123")
    await keypad.close()
    await asyncio.sleep(PAUSE_S * 4)  # long past the pause that would have submitted it
    assert entries.received == []


async def test_close_twice_is_safe():
    entries = Entries()
    keypad = Keypad(entries, timeout_s=PAUSE_S)
    await keypad.press("1")
    await keypad.close()
    await keypad.close()
    assert entries.received == []


async def test_close_without_keys_is_safe():
    keypad = Keypad(Entries(), timeout_s=PAUSE_S)
    await keypad.close()
    await keypad.close()


async def test_close_then_hash_submits_nothing():
    entries = Entries()
    keypad = Keypad(entries, timeout_s=NEVER_S)
    await press_all(keypad, "12")
    await keypad.close()
    await keypad.press("#")  # the dropped keys are gone, not held for a later "#"
    assert entries.received == []


async def test_close_cancels_a_submission_in_progress():
    on_entry = BlockingEntries()
    keypad = Keypad(on_entry, timeout_s=PAUSE_S)
    await keypad.press("1")
    await on_entry.wait_started(1)
    await asyncio.wait_for(keypad.close(), BOUND_S)  # returns although on_entry is held
    assert on_entry.cancelled == ["1"]
    assert on_entry.finished == []
    on_entry.release.set()
    await asyncio.sleep(0)
    assert on_entry.finished == []
