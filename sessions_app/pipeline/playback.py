"""The playback worker: an agent reply, sentence by sentence, to audio frames paced in real time.

Sentences are synthesised while earlier ones play, so the first sentence is heard before the
reply is complete. Frames leave at real-time pace with a small lead (PLAYBACK_LEAD_MS) so the
client's buffer never holds more than that: when playback stops, the caller stops hearing it
within the lead. The worker knows how much has been played, and so which words were heard.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agents_app.errors import ProviderError
from agents_app.speech.audio import frame_bytes, resample
from agents_app.speech.tts.base import SpeechClip, SpeechSynthesizer
from sessions_app import events
from sessions_app.events import ErrorBody, Event

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


class PlaybackWorker:
    """Speaks one agent turn. Owns its synthesis and pacing tasks; `stop()` silences it at once."""

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
    ) -> None:
        self.turn = turn
        self.sample_rate = sample_rate
        self._synthesizer = synthesizer
        self._send_audio = send_audio
        self._send_event = send_event
        self._report = report
        self._frame_ms = frame_ms
        self._lead_s = lead_ms / 1000
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self._clips: asyncio.Queue[SpeechClip | None] = asyncio.Queue()
        self._placed: list[_PlacedClip] = []
        self._sent_ms = 0.0
        self._origin: float | None = None  # loop time at which turn audio position 0 plays
        self._stopped = False
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
        return round(self._sent_ms)

    @property
    def played_ms(self) -> int:
        """How much of the turn's audio the caller has heard by now."""
        if self._origin is None:
            return 0
        elapsed = (asyncio.get_running_loop().time() - self._origin) * 1000
        return int(max(0.0, min(self._sent_ms, elapsed)))

    def heard_text(self, played_ms: int) -> str:
        """The words of the reply whose sound had started by `played_ms`."""
        heard = []
        for placed in self._placed:
            if placed.offset_ms >= played_ms:
                break
            heard.append(placed.clip.heard_text(played_ms - placed.offset_ms))
        return " ".join(part for part in heard if part)

    def stop(self) -> int:
        """Send no further frame, cancel synthesis; return the milliseconds played."""
        played = self.played_ms
        self._stopped = True
        self._synthesis.cancel()
        self._pacing.cancel()
        return played

    async def _synthesize_sentences(self) -> None:
        try:
            while (sentence := await self._sentences.get()) is not None:
                clip = await self._synthesizer.synthesize(sentence)
                self._clips.put_nowait(clip)
        except ProviderError as exc:
            await self._report(events.error_for(exc))
        finally:
            self._clips.put_nowait(None)

    async def _pace_frames(self) -> None:
        size = frame_bytes(self.sample_rate, self._frame_ms)
        pending = b""  # the tail of a clip that does not fill a frame waits for the next clip
        while (clip := await self._clips.get()) is not None:
            self._placed.append(
                _PlacedClip(clip, self._sent_ms + len(pending) / 2 / self.sample_rate * 1000)
            )
            pending += resample(clip.pcm, clip.sample_rate, self.sample_rate)
            whole = len(pending) - len(pending) % size
            for start in range(0, whole, size):
                if not await self._send_paced(pending[start : start + size]):
                    return
            pending = pending[whole:]
        if pending and not await self._send_paced(pending):
            return
        if self._origin is not None:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, self._origin + self._sent_ms / 1000 - loop.time()))

    async def _send_paced(self, frame: bytes) -> bool:
        """Send one frame when it is due (a lead ahead of real time); False once stopped."""
        now = asyncio.get_running_loop().time()
        if self._origin is None:
            self._origin = now
            await self._send_event(
                events.playback_started(turn=self.turn, sample_rate=self.sample_rate)
            )
        elif now > self._origin + self._sent_ms / 1000:
            # We fell behind (slow synthesis): the client drained its buffer and waited.
            self._origin = now - self._sent_ms / 1000
        due = self._origin + self._sent_ms / 1000 - self._lead_s
        if due > now:
            await asyncio.sleep(due - now)
        if self._stopped:
            return False
        await self._send_audio(frame)
        self._sent_ms += len(frame) / 2 / self.sample_rate * 1000
        return True
