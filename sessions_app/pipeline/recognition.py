"""The recognition worker: caller audio → voice detection → speech recognition → the listener.

Audio frames are queued by the consumer and handled in this worker's own task, so a slow
decoder never delays the consumer (nor, through it, a barge-in). What needs no waiting is
heard as it arrives instead (quiet audio, and speech that only goes on, finished when Silero's
answer comes), always in order with what the task does. The queue holds at most
`max_queued_ms` of audio: beyond, `feed` refuses it, and nothing waits without bound (nor is
decoded after the session ends). Every voice detector event reaches the listener the moment it
happens; the recognizer also gets the audio from just before the onset, so the first word is
not lost to the detector's confirmation delay.

When an utterance ends is the listener's call (its turn-taking): at a pause it may ask for a
turn check (the end-of-turn model and the recognizer's speculative words, computed off this
task and handed back in order with the audio), then `end_utterance()`; the detector's
hangover is only the longest silence a turn may hold.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from django.conf import settings

from agents_app.errors import ProviderError, ProviderUnavailable
from agents_app.speech.audio import StreamResampler
from agents_app.speech.stt.base import INPUT_RATE, SpeechRecognizer, Transcript
from agents_app.speech.turn import TurnModel
from sessions_app.pipeline.stream_map import StreamMap
from sessions_app.recording.digit_spans import redacted_spans
from sessions_app.redaction import digit_runs
from sessions_app.vad import (
    SpeechDetector,
    SpeechDismissed,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
    SpeechSuspected,
)

logger = logging.getLogger(__name__)

# Audio kept from before the detector confirms speech, handed to the recognizer at onset.
PRE_ROLL_MS = 300
# The end of an utterance the turn model judges (smart-turn reads the last 8 s).
TURN_MODEL_AUDIO_S = 8


@dataclass(frozen=True)
class UnfinishedUtterance:
    transcript: Transcript
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class TurnCheck:
    """What the end-of-turn model (and then the recognizer) made of the pause that began at
    `paused_at_ms`. The model answers first, alone: a confident "finished" needs no words."""

    paused_at_ms: int
    probability: float | None
    words: str | None = None


class RecognitionListener(Protocol):
    async def on_speech_suspected(self, offset_ms: int) -> None: ...

    async def on_speech_dismissed(self, offset_ms: int) -> None: ...

    async def on_speech_started(self, offset_ms: int) -> None: ...

    async def on_speech_paused(self, offset_ms: int) -> None: ...

    async def on_speech_resumed(self, offset_ms: int) -> None: ...

    async def on_silence_limit(self) -> None: ...

    async def on_audio_time(self, now_ms: int) -> None: ...

    def wants_audio_time(self) -> bool:
        """Whether `on_audio_time` has anything to do (a clock is running); if not, quiet
        audio is heard without it."""
        ...

    async def on_turn_check(self, now_ms: int, check: TurnCheck) -> None: ...

    async def on_speech_stopped(self, offset_ms: int, duration_ms: int) -> None: ...

    async def on_partial(self, text: str) -> None: ...

    async def on_final(self, transcript: Transcript, start_ms: int, end_ms: int) -> None:
        """An utterance ended; its text may be empty (a cough the detector took for speech)."""
        ...

    async def on_recognition_error(self, exc: ProviderError) -> None: ...


@dataclass(frozen=True)
class _Unheard:
    """A chunk `feed` began to hear at once and could not finish without the worker's task:
    its audio (at 16 kHz) and what the detector made of it so far, finished in the task."""

    pcm: bytes
    events: list[object]
    unscored: list[bytes]
    error: ProviderError | None = None  # the engine failed after `events`


def _ms(size: int) -> float:
    """The duration of `size` bytes of 16 kHz PCM16."""
    return size / 2 / INPUT_RATE * 1000


class RecognitionWorker:
    """One session's listening side. Owns its task; `close()` cancels it.

    With `silence_audio` (a session being recorded), each final whose text holds a redacted
    digit run has that run's stretch of the caller's stream (ms) handed to it, from the
    recognizer's word timings, or the whole utterance's when the engine has none.
    """

    def __init__(
        self,
        listener: RecognitionListener,
        detector: SpeechDetector,
        recognizer: SpeechRecognizer | None,
        *,
        sample_rate: int,
        max_queued_ms: int,
        turn_model: TurnModel | None = None,
        silence_audio: Callable[[float, float], None] | None = None,
    ) -> None:
        self._listener = listener
        self._silence_audio = silence_audio
        self._detector = detector
        self._recognizer = recognizer
        self._turn_model = turn_model
        self._resample = StreamResampler(sample_rate, INPUT_RATE)
        self._audio: asyncio.Queue[bytes | TurnCheck | _Unheard] = asyncio.Queue()
        self._waiting = False  # the task waits for audio, with nothing queued or under way
        self._scoring: _Unheard | None = None  # a chunk whose frames the engine scores now
        self._held: deque[bytes | TurnCheck] = deque()  # what came while it does, in order
        self._closed = False
        self._accept_now = getattr(recognizer, "accept_now", None)
        # Speech can be heard outside the task when the recognizer (if any) only buffers.
        self._buffers_only = recognizer is None or self._accept_now is not None
        self._queued_bytes = 0
        self._max_queued_bytes = sample_rate * 2 * max_queued_ms // 1000
        self._received_ms = 0.0  # stream time of the audio handed to the detector
        self._pre_roll = bytearray()  # its last `_pre_roll_bytes` are the pre-roll
        self._pre_roll_bytes = INPUT_RATE * 2 * (PRE_ROLL_MS + settings.VAD_MIN_SPEECH_MS) // 1000
        self._speech_start_ms: int | None = None
        self._onset_chunk = False  # the chunk that confirmed speech went in with the pre-roll
        self._utterance = bytearray()  # the current utterance's audio, for the turn model
        self._previous = b""  # the last utterance's, which the next may continue
        self._heard = StreamMap()  # where the recognizer's audio of the utterance lies
        self._utterance_cut_ms = 0.0  # cut off the front of `_utterance` (kept to 8 s)
        self._previous_map = StreamMap()
        self._continuing = False
        self._hangover_stop: SpeechStopped | None = None
        self._check: asyncio.Task[None] | None = None
        self._task = asyncio.create_task(self._run())

    def feed(self, pcm: bytes) -> bool:
        """Queue caller audio (at the session's rate); never blocks. False when the queue is
        full (recognition is that far behind): the audio is dropped.

        With nothing queued or under way, the chunk is heard at once, as far as that needs no
        waiting: quiet audio (the gate closed, nothing starting or ending) is then done here,
        sparing the worker's task a wake-up per frame (at 50 frames a second a caller, that
        was a tenth of the event loop under load), and so is speech that only goes on (the
        engine's answer finishes it, see `_scored`); the rest goes to the task, in order."""
        if self._queued_bytes + len(pcm) > self._max_queued_bytes:
            return False
        if self._scoring is None and self._waiting and self._audio.empty():
            self._hear_soon(pcm)
            return True
        self._queued_bytes += len(pcm)
        self._enqueue(pcm)
        return True

    def _enqueue(self, item: bytes | TurnCheck) -> None:
        """Queue `item` for the task behind everything before it, a chunk being scored too."""
        if self._scoring is not None or self._held:
            self._held.append(item)
        else:
            self._audio.put_nowait(item)

    def _hear_soon(self, pcm: bytes) -> None:
        """Hear a chunk (at the session's rate) without the task where nothing in it needs
        one: no detector event, no listener clock, a recognizer that only buffers."""
        try:
            unheard = self._hear_now(self._resample(pcm))
            if unheard is None:
                return
            if not unheard.events and self._finishes_without_task():
                if not unheard.unscored:
                    self._finish_now(unheard.pcm)
                    return
                if self._detector.can_score_soon():
                    self._scoring = unheard
                    self._detector.score_soon(unheard.unscored, partial(self._scored, unheard))
                    return
        except Exception:  # as the task would: one bad chunk must not deafen the session
            self._scoring = None
            logger.exception("recognition failed on a chunk of caller audio")
            return
        self._audio.put_nowait(unheard)

    def _scored(self, unheard: _Unheard, events: list, error: ProviderError | None) -> None:
        """The engine's answer for the chunk being scored (in the event loop): finished here
        if the answer changes nothing, else in the task; then what waited behind it."""
        self._scoring = None
        if self._closed:
            return
        if error is None and not events and self._finishes_without_task():
            try:
                self._finish_now(unheard.pcm)
            except Exception:
                logger.exception("recognition failed on a chunk of caller audio")
        else:
            self._audio.put_nowait(_Unheard(unheard.pcm, unheard.events + events, [], error))
        while self._held and self._scoring is None:
            item = self._held.popleft()
            if isinstance(item, bytes) and self._waiting and self._audio.empty():
                self._queued_bytes -= len(item)
                self._hear_soon(item)
            else:
                self._audio.put_nowait(item)

    def _finishes_without_task(self) -> bool:
        """Whether a chunk with no detector event can be finished outside the task."""
        return self._buffers_only and not self._listener.wants_audio_time()

    def _finish_now(self, pcm: bytes) -> None:
        """`_finish_hearing`'s end for a chunk with no event (see `_finishes_without_task`)."""
        if self._keep_utterance(pcm) and self._accept_now is not None:
            self._accept_now(pcm)

    def _next_queued(self) -> bytes | TurnCheck | _Unheard:
        item = self._audio.get_nowait()
        if isinstance(item, bytes):
            self._queued_bytes -= len(item)
        return item

    @property
    def position_ms(self) -> int:
        """Stream time of the audio heard so far (by its sample count)."""
        return self._detector.position_ms

    @property
    def recognizes(self) -> bool:
        """Whether utterances get words (else only voice activity is known)."""
        return self._recognizer is not None

    async def end_utterance(self) -> None:
        """End the utterance now (the listener decided the caller is done): `speech_stopped`,
        then its final. Call from a listener method, which runs in this worker's task."""
        stops = self._detector.end_speech() or [self._hangover_stop]
        self._hangover_stop = None
        start_ms, self._speech_start_ms = self._speech_start_ms, None
        self._cancel_check()
        stop = stops[0]
        if stop is None or start_ms is None:
            return
        self._previous = bytes(self._utterance)
        self._previous_map = self._heard.trimmed(self._utterance_cut_ms)
        await self._listener.on_speech_stopped(stop.offset_ms, stop.duration_ms)
        transcript = Transcript(text="")
        if self._recognizer is not None:
            transcript = await self._recognizer.finish_utterance()
            await self._silence_redacted(transcript.text)
        await self._listener.on_final(transcript, start_ms, stop.offset_ms)

    async def _silence_redacted(self, text: str) -> None:
        """Hand the stream stretches of the utterance's redacted digit runs to be silenced."""
        if self._silence_audio is None or self._recognizer is None or not digit_runs(text):
            return
        heard = self._heard
        try:
            spans = redacted_spans(text, await self._recognizer.word_timings())
            spans = [(heard.stream_ms(start), heard.stream_ms(end)) for start, end in spans]
        except (LookupError, ProviderError):
            spans = [(heard.stream_ms(0), self._received_ms)]  # never keep the digits
        for start, end in spans:
            self._silence_audio(start, end)

    def continue_utterance(self) -> None:
        """The speech just started goes on with the last utterance: the recognizer and the
        turn model hear the two as one (call from `on_speech_started`)."""
        self._continuing = True

    def check_turn_end(self, paused_at_ms: int) -> None:
        """Ask the turn model, then the recognizer, about the pause that began at
        `paused_at_ms`; each answer comes back through the queue, in order with the audio, as
        `on_turn_check`."""
        self._cancel_check()
        self._check = asyncio.create_task(self._turn_check(paused_at_ms, bytes(self._utterance)))

    async def _turn_check(self, paused_at_ms: int, audio: bytes) -> None:
        probability = None
        if self._turn_model is not None:
            try:
                probability = await self._turn_model.finished_probability(audio)
            except ProviderError as exc:
                logger.warning("the end-of-turn model failed (%s): waiting for silence", exc.code)
            self._enqueue(TurnCheck(paused_at_ms, probability))
        if self._recognizer is not None:
            words = await self._recognizer.peek()
            self._enqueue(TurnCheck(paused_at_ms, probability, words))

    def _cancel_check(self) -> None:
        if self._check is not None:
            self._check.cancel()
            self._check = None

    async def close(self) -> UnfinishedUtterance | None:
        """Stop listening. Words of an utterance still being spoken are recognised and
        returned, so ending a session mid-sentence loses nothing that was said."""
        self._closed = True
        self._task.cancel()
        self._cancel_check()
        await asyncio.wait([self._task])
        if self._recognizer is None:
            return None
        unfinished = None
        try:
            if self._speech_start_ms is not None:
                unheard: list[bytes | TurnCheck | _Unheard] = []
                while not self._audio.empty():  # audio received but not yet heard
                    unheard.append(self._next_queued())
                if self._scoring is not None:  # (while it is, the queue is empty)
                    unheard.append(self._scoring)
                unheard += self._held
                for item in unheard:
                    if isinstance(item, bytes):
                        pcm = self._resample(item)
                        self._received_ms += _ms(len(pcm))
                        await self._recognizer.accept(pcm)
                    elif isinstance(item, _Unheard):  # counted in time already
                        await self._recognizer.accept(item.pcm)
                transcript = await self._recognizer.finish_utterance()
                await self._silence_redacted(transcript.text)
                if transcript.text.strip():
                    end_ms = round(self._received_ms)
                    unfinished = UnfinishedUtterance(transcript, self._speech_start_ms, end_ms)
        finally:
            await self._recognizer.aclose()
        return unfinished

    async def _run(self) -> None:
        while True:
            self._waiting = self._audio.empty()
            item = await self._audio.get()
            self._waiting = False
            try:
                if isinstance(item, TurnCheck):
                    await self._listener.on_turn_check(self.position_ms, item)
                    continue
                if isinstance(item, _Unheard):
                    await self._finish_hearing(item)
                    continue
                self._queued_bytes -= len(item)
                await self._hear(self._resample(item))
            except ProviderError as exc:
                self._speech_start_ms = None
                await self._listener.on_recognition_error(exc)
            except Exception:
                # One bad chunk must not deafen the session: report it and keep listening.
                logger.exception("recognition failed on a chunk of caller audio")
                self._speech_start_ms = None
                await self._listener.on_recognition_error(
                    ProviderUnavailable("speech recognition failed", role="stt")
                )

    async def _hear(self, pcm: bytes) -> None:
        unheard = self._hear_now(pcm)
        if unheard is not None:
            await self._finish_hearing(unheard)

    def _hear_now(self, pcm: bytes) -> _Unheard | None:
        """Hear `pcm` as far as that needs no waiting; None if that was all of it, else what
        `_finish_hearing` must do."""
        self._received_ms += _ms(len(pcm))
        self._keep_pre_roll(pcm)
        events, unscored = self._detector.process_now(pcm)
        if events or unscored or self._speech_start_ms is not None:
            return _Unheard(pcm, events, unscored)
        if self._listener.wants_audio_time():
            return _Unheard(pcm, [], [])
        return None

    async def _finish_hearing(self, unheard: _Unheard) -> None:
        pcm = unheard.pcm
        for event in unheard.events + await self._detector.score(unheard.unscored):
            await self._on_detector(event)
        if unheard.error is not None:
            raise unheard.error
        if self._keep_utterance(pcm) and self._recognizer is not None:
            await self._partial(await self._recognizer.accept(pcm))
        await self._listener.on_audio_time(self.position_ms)

    def _keep_utterance(self, pcm: bytes) -> bool:
        """Add a heard chunk to the utterance going on, if any: whether the recognizer must
        have it too (the chunk that confirmed speech went in with the pre-roll)."""
        if self._onset_chunk:
            self._onset_chunk = False
            return False
        if self._speech_start_ms is None:
            return False
        self._utterance += pcm
        kept = len(self._utterance)
        del self._utterance[: -INPUT_RATE * 2 * TURN_MODEL_AUDIO_S]
        self._utterance_cut_ms += _ms(kept - len(self._utterance))
        return True

    async def _on_detector(self, event: object) -> None:
        listener = self._listener
        if isinstance(event, SpeechSuspected):
            await listener.on_speech_suspected(event.offset_ms)
        elif isinstance(event, SpeechDismissed):
            await listener.on_speech_dismissed(event.offset_ms)
        elif isinstance(event, SpeechStarted):
            await self._speech_started(event.offset_ms)
        elif isinstance(event, SpeechPaused):
            if self._recognizer is not None:
                self._recognizer.pause()
            await listener.on_speech_paused(event.offset_ms)
        elif isinstance(event, SpeechResumed):
            self._cancel_check()
            if self._recognizer is not None:
                self._recognizer.resume()
            await listener.on_speech_resumed(event.offset_ms)
        elif isinstance(event, SpeechStopped):
            self._hangover_stop = event
            await listener.on_silence_limit()
            if self._hangover_stop is not None:  # the listener did not end it: end it now
                await self.end_utterance()

    async def _speech_started(self, offset_ms: int) -> None:
        self._speech_start_ms = offset_ms
        self._continuing = False
        await self._listener.on_speech_started(offset_ms)
        lead = self._previous if self._continuing else b""
        pre_roll = self._pre_roll[-self._pre_roll_bytes :]
        onset = StreamMap([(0.0, self._received_ms - _ms(len(pre_roll)))])
        self._heard = self._previous_map.followed_by(_ms(len(lead)), onset) if lead else onset
        self._utterance_cut_ms = 0.0
        self._utterance = bytearray(lead + pre_roll)
        if self._recognizer is not None:
            await self._recognizer.start_utterance()
            self._onset_chunk = True
            await self._partial(await self._recognizer.accept(bytes(self._utterance)))

    async def _partial(self, text: str | None) -> None:
        if text:
            await self._listener.on_partial(text)

    def _keep_pre_roll(self, pcm: bytes) -> None:
        self._pre_roll += pcm
        if len(self._pre_roll) > 2 * self._pre_roll_bytes:  # trimmed now and then, not per frame
            del self._pre_roll[: -self._pre_roll_bytes]
