"""The playback worker: an agent reply, sentence by sentence, to audio frames paced in real time.

Sentences are synthesised while earlier ones play, so the first sentence is heard before the
reply is complete. Frames leave at real-time pace with a small lead (PLAYBACK_LEAD_MS) so the
client's buffer never holds more than that: when playback stops, the caller stops hearing it
within the lead. The worker knows how much has been played, and so which words were heard.

No worker keeps a timer: the process's playback clock (playback_clock.py) ticks every 20 ms
and releases each worker's sender when its next frame is due, so frames leave on the tick at
or after their due time (a lead of PLAYBACK_LEAD_MS minus up to one tick).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agents_app.errors import ProviderError
from agents_app.speech.audio import frame_bytes, resample_off_loop
from agents_app.speech.tts.base import SpeechClip, SpeechSynthesizer
from sessions_app import events
from sessions_app.events import ErrorBody, Event
from sessions_app.pipeline.playback_clock import PlaybackClock, playback_clock

logger = logging.getLogger(__name__)

AudioSender = Callable[[bytes], Awaitable[None]]
EventSender = Callable[[Event], Awaitable[None]]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CLAUSE_END = re.compile(r"(?<=[,;])\s+")  # not ":", which introduces what follows
# A clause this long is spoken without waiting for its full stop.
MAX_SENTENCE_CHARS = 160
# A reply's first clause of at least this many words is spoken alone, without waiting for the
# rest of its sentence: a short first synthesis makes the first audio come sooner (piper takes
# ~60 ms a second of speech; bench/tts_latency.py). A lone "Okay," waits for more.
FIRST_CLAUSE_WORDS = 2
# What is due this close to a tick is due on it (positions and ticks are inexact floats).
DUE_SLACK_S = 0.001


def first_clause(sentence: str) -> tuple[str, str] | None:
    """The sentence cut after its first clause of FIRST_CLAUSE_WORDS words or more, if any."""
    for end in _CLAUSE_END.finditer(sentence):
        head = sentence[: end.start()]
        if len(head.split()) >= FIRST_CLAUSE_WORDS:
            return head, sentence[end.end() :]
    return None


class SentenceSplitter:
    """Cuts streamed text into sentences as soon as each is complete; with
    `early_first_clause`, the reply's first clause comes alone, as soon as it is complete."""

    def __init__(self, early_first_clause: bool = True) -> None:
        self._pending = ""
        self._opening = early_first_clause  # the reply's first clause may still be cut off

    def feed(self, text: str) -> list[str]:
        parts = _SENTENCE_END.split(self._pending + text)
        self._pending = parts.pop()
        if self._opening:
            parts = self._cut_first_clause(parts)
        if len(self._pending) > MAX_SENTENCE_CHARS and " " in self._pending:
            head, self._pending = self._pending.rsplit(" ", 1)
            parts.append(head)
        return [part.strip() for part in parts if part.strip()]

    def flush(self) -> list[str]:
        rest, self._pending = self._pending.strip(), ""
        return [rest] if rest else []

    def _cut_first_clause(self, sentences: list[str]) -> list[str]:
        """The first clause comes off the first complete sentence or, while none is, off the
        sentence still arriving; after the first sentence no clause is cut."""
        if sentences:
            self._opening = False
            cut = first_clause(sentences[0])
            return [*cut, *sentences[1:]] if cut else sentences
        cut = first_clause(self._pending)
        if cut is None:
            return sentences
        self._opening = False
        clause, self._pending = cut
        return [clause]


@dataclass
class _PlacedClip:
    clip: SpeechClip
    offset_ms: float  # where the clip starts in the turn's audio

    def word_start_ms(self, position_ms: float) -> float:
        """Where the word sounding at `position_ms` (turn time, inside this clip) began."""
        starts = [
            mark.audio_ms
            for mark in self.clip.words
            if mark.audio_ms <= position_ms - self.offset_ms
        ]
        return self.offset_ms + (starts[-1] if starts else 0)


class PlaybackWorker:
    """Speaks one agent turn. Owns its synthesis and pacing tasks; the pacing task is the
    turn's sender, registered on the playback clock while it runs.

    The turn's audio is one timeline, synthesised clip by clip and sent from a cursor. `pause()`
    stops the frames at once (the client drops what it holds) and moves the cursor back to the
    start of the word the caller was hearing, so `resume()` goes on intelligibly; `stop()` ends
    the turn. Played time counts only what the caller could hear: paused time, and frames sent
    ahead but dropped, are not played.
    """

    def __init__(
        self,
        synthesizer: SpeechSynthesizer,
        *,
        turn: int,
        sample_rate: int,
        send_audio: AudioSender,
        send_event: EventSender,
        report: Callable[[ErrorBody], Awaitable[None]],
        frame_ms: int,
        lead_ms: int,
        clock: PlaybackClock = playback_clock,
        mark: Callable[[str], None] = lambda moment: None,
    ) -> None:
        self.turn = turn
        self.sample_rate = sample_rate
        self._synthesizer = synthesizer
        self._send_audio = send_audio
        self._send_event = send_event
        self._report = report
        self._mark = mark  # told "first_audio" and "first_frame" (TurnMetrics moments)
        self._frame_bytes = frame_bytes(sample_rate, frame_ms)
        self._lead_s = lead_ms / 1000
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self._audio = bytearray()  # the turn's audio so far, at the session's rate
        self._placed: list[_PlacedClip] = []
        self._synthesised = False  # every sentence is in `_audio`
        self._clock = clock
        self._wake: asyncio.Future[None] | None = None  # the sender waits on it
        self._wake_at: float | None = None  # when the clock releases it (None: on a change)
        self._cursor = 0  # bytes of `_audio` before the next frame to send
        self._origin: float | None = None  # loop time at which timeline position 0 plays
        self._run_from_ms = 0.0  # where the current run of frames began
        self._earlier_runs_ms = 0.0  # heard in runs that a pause ended
        self._heard_until_ms = 0.0  # the furthest position the caller has heard
        self._started = False
        self._paused = False
        self._stopped = False
        self._played_out = False  # the last frame has played: the position is the end
        self._sending = asyncio.Lock()  # held while a frame is being sent
        self._synthesis = asyncio.create_task(self._synthesize_sentences())
        self._pacing = asyncio.create_task(self._pace_frames())

    def speak(self, sentence: str) -> None:
        self._sentences.put_nowait(sentence)

    def finish(self) -> None:
        """No more sentences will come; playback ends after the last one."""
        self._sentences.put_nowait(None)

    async def wait_played(self) -> int:
        """Once every frame has been sent and has had time to play, the milliseconds played."""
        await asyncio.shield(self._pacing)
        return self.played_ms

    @property
    def started(self) -> bool:
        """Whether any frame has been sent (`playback_started` went out)."""
        return self._started

    @property
    def played_ms(self) -> int:
        """How much of the turn's audio the caller has heard by now."""
        current = 0.0 if self._paused else self._position_ms() - self._run_from_ms
        return round(self._earlier_runs_ms + current)

    def heard_text(self) -> str:
        """The words of the reply whose sound the caller had started to hear."""
        position = self._heard_until_ms if self._paused else self._note_position()
        heard = []
        for placed in self._placed:
            if placed.offset_ms >= position:
                break
            heard.append(placed.clip.heard_text(position - placed.offset_ms))
        return " ".join(part for part in heard if part)

    async def pause(self) -> int:
        """Send no further frame until `resume()`; the milliseconds played so far. Returns
        once a frame already being sent has gone, so nothing follows what the caller is told."""
        played = self.hold()
        async with self._sending:
            return played

    def hold(self) -> int:
        """`pause()` without waiting for a frame in flight (for `stop()`, which cancels it)."""
        if self._paused:
            return self.played_ms
        position = self._note_position()
        self._earlier_runs_ms += position - self._run_from_ms
        self._paused = True
        rewound = self._word_start_ms(position)
        self._cursor = min(len(self._audio), self._bytes_at(rewound))
        self._run_from_ms = self._ms(self._cursor)
        return self.played_ms

    def resume(self) -> int:
        """Go on from the start of the word the pause cut; the milliseconds played so far."""
        if self._paused and not self._stopped:
            self._paused = False
            self._origin = None  # the next frame sets the clock anew
            self._run_from_ms = self._ms(self._cursor)
            self._changed()
        return self.played_ms

    def stop(self) -> int:
        """Send no further frame, cancel synthesis; return the milliseconds played."""
        played = self.hold()
        self._stopped = True
        self._synthesis.cancel()
        self._pacing.cancel()
        return played

    # --- the timeline ---------------------------------------------------------------------

    def _ms(self, size: int) -> float:
        return size / 2 / self.sample_rate * 1000

    def _bytes_at(self, position_ms: float) -> int:
        return int(position_ms * self.sample_rate / 1000) * 2

    def _position_ms(self) -> float:
        """The timeline position the caller hears now (within the current run)."""
        if self._origin is None:
            return self._run_from_ms
        if self._played_out:
            return self._ms(self._cursor)
        elapsed = (self._clock.now() - self._origin) * 1000
        return max(self._run_from_ms, min(self._ms(self._cursor), elapsed))

    def _note_position(self) -> float:
        position = self._position_ms()
        self._heard_until_ms = max(self._heard_until_ms, position)
        return position

    def _word_start_ms(self, position_ms: float) -> float:
        for placed in reversed(self._placed):
            if placed.offset_ms <= position_ms:
                return placed.word_start_ms(position_ms)
        return 0.0

    # --- the tasks ------------------------------------------------------------------------

    async def _synthesize_sentences(self) -> None:
        try:
            while (sentence := await self._sentences.get()) is not None:
                clip = await self._synthesizer.synthesize(sentence)
                self._mark("first_audio")  # kept the first time only
                self._placed.append(_PlacedClip(clip, self._ms(len(self._audio))))
                self._audio += await resample_off_loop(clip.pcm, clip.sample_rate, self.sample_rate)
                self._changed()
        except ProviderError as exc:
            await self._report(events.error_for(exc))
        finally:
            self._synthesised = True
            self._changed()

    async def _pace_frames(self) -> None:
        self._clock.register(self)
        try:
            await self._send_frames()
        finally:
            self._clock.unregister(self)

    async def _send_frames(self) -> None:
        while True:
            waiting = len(self._audio) - self._cursor
            if not self._paused and (
                waiting >= self._frame_bytes or (self._synthesised and waiting > 0)
            ):
                await self._send_paced()
                continue
            if self._paused or not self._synthesised:
                await self._wait(None)
                continue
            if self._origin is None:
                return  # nothing was ever sent, or nothing more since a resume
            # All sent: the turn is over once the last frame has played (a pause may rewind).
            ends_at = self._origin + self._ms(self._cursor) / 1000
            if self._clock.now() + DUE_SLACK_S >= ends_at:
                self._played_out = True
                self._note_position()
                return
            await self._wait(ends_at)

    def on_tick(self, now: float) -> None:
        """The clock's tick: release the sender if what it waits for is due."""
        if self._wake_at is not None and now + DUE_SLACK_S >= self._wake_at:
            self._changed()

    def _changed(self) -> None:
        """Release the sender now: audio was added, synthesis ended, or playback resumed."""
        wake, self._wake, self._wake_at = self._wake, None, None
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _wait(self, until: float | None) -> None:
        """Until the clock reaches `until` (None: never), or a change, whichever comes first."""
        self._wake = asyncio.get_running_loop().create_future()
        self._wake_at = until
        await self._wake

    async def _send_paced(self) -> None:
        """Send the frame at the cursor if it is due (a lead ahead of real time), else wait
        until it is or something changes (the caller then looks again)."""
        now = self._clock.now()
        position_s = self._ms(self._cursor) / 1000
        if not self._started:
            self._started = True
            await self._send_event(
                events.playback_started(turn=self.turn, sample_rate=self.sample_rate)
            )
        if self._origin is None or now > self._origin + position_s:
            # A new run, or we fell behind (slow synthesis): the client drained its buffer.
            self._origin = now - position_s
        due = self._origin + position_s - self._lead_s
        if due > now + DUE_SLACK_S:
            await self._wait(due)
            return
        async with self._sending:
            if self._paused or self._stopped:
                return
            with memoryview(self._audio) as audio:  # one copy: the frame sent
                frame = audio[self._cursor : self._cursor + self._frame_bytes].tobytes()
            self._mark("first_frame")
            await self._send_audio(frame)
            self._cursor += len(frame)
