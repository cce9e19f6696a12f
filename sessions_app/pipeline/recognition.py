"""The recognition worker: caller audio → voice detection → speech recognition → the turn manager.

Audio frames are queued by the consumer and handled in this worker's own task, so a slow
decoder never delays the consumer (nor, through it, a barge-in). The queue holds at most
`max_queued_ms` of audio: beyond, `feed` refuses it, and nothing waits without bound (nor is
decoded after the session ends). Voice onset is reported the
moment it is confirmed; the recognizer also gets the audio from just before the onset, so the
first word is not lost to the detector's confirmation delay.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings

from agents_app.errors import ProviderError, ProviderUnavailable
from agents_app.speech.audio import StreamResampler
from agents_app.speech.stt.base import INPUT_RATE, SpeechRecognizer, Transcript
from sessions_app.vad import (
    SpeechDetector,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
)

logger = logging.getLogger(__name__)

# Audio kept from before the detector confirms speech, handed to the recognizer at onset.
PRE_ROLL_MS = 300


@dataclass(frozen=True)
class UnfinishedUtterance:
    transcript: Transcript
    start_ms: int
    end_ms: int


class RecognitionListener(Protocol):
    async def on_speech_started(self, offset_ms: int) -> None: ...

    async def on_speech_stopped(self, offset_ms: int, duration_ms: int) -> None: ...

    async def on_partial(self, text: str) -> None: ...

    async def on_final(self, transcript: Transcript, start_ms: int, end_ms: int) -> None: ...

    async def on_recognition_error(self, exc: ProviderError) -> None: ...


class RecognitionWorker:
    """One session's listening side. Owns its task; `close()` cancels it."""

    def __init__(
        self,
        listener: RecognitionListener,
        detector: SpeechDetector,
        recognizer: SpeechRecognizer | None,
        *,
        sample_rate: int,
        max_queued_ms: int,
    ) -> None:
        self._listener = listener
        self._detector = detector
        self._recognizer = recognizer
        self._resample = StreamResampler(sample_rate, INPUT_RATE)
        self._audio: asyncio.Queue[bytes] = asyncio.Queue()
        self._queued_bytes = 0
        self._max_queued_bytes = sample_rate * 2 * max_queued_ms // 1000
        self._received_ms = 0.0  # stream time of the audio handed to the detector
        self._pre_roll = bytearray()
        self._speech_start_ms: int | None = None
        self._onset_chunk = False  # the chunk that confirmed speech went in with the pre-roll
        self._task = asyncio.create_task(self._run())

    def feed(self, pcm: bytes) -> bool:
        """Queue caller audio (at the session's rate); never blocks. False when the queue is
        full (recognition is that far behind): the audio is dropped."""
        if self._queued_bytes + len(pcm) > self._max_queued_bytes:
            return False
        self._queued_bytes += len(pcm)
        self._audio.put_nowait(pcm)
        return True

    def _next_queued(self) -> bytes:
        pcm = self._audio.get_nowait()
        self._queued_bytes -= len(pcm)
        return pcm

    async def close(self) -> UnfinishedUtterance | None:
        """Stop listening. Words of an utterance still being spoken are recognised and
        returned, so ending a session mid-sentence loses nothing that was said."""
        self._task.cancel()
        await asyncio.wait([self._task])
        if self._recognizer is None:
            return None
        unfinished = None
        try:
            if self._speech_start_ms is not None:
                while not self._audio.empty():  # audio received but not yet heard
                    pcm = self._resample(self._next_queued())
                    self._received_ms += len(pcm) / 2 / INPUT_RATE * 1000
                    await self._recognizer.accept(pcm)
                transcript = await self._recognizer.finish_utterance()
                if transcript.text.strip():
                    end_ms = round(self._received_ms)
                    unfinished = UnfinishedUtterance(transcript, self._speech_start_ms, end_ms)
        finally:
            await self._recognizer.aclose()
        return unfinished

    async def _run(self) -> None:
        while True:
            pcm = await self._audio.get()
            self._queued_bytes -= len(pcm)
            pcm = self._resample(pcm)
            try:
                await self._hear(pcm)
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
        self._received_ms += len(pcm) / 2 / INPUT_RATE * 1000
        self._keep_pre_roll(pcm)
        for event in self._detector.process(pcm):
            if isinstance(event, SpeechStarted):
                await self._speech_started(event.offset_ms)
            elif isinstance(event, SpeechStopped):
                await self._speech_stopped(event.offset_ms, event.duration_ms)
            elif self._recognizer is not None and isinstance(event, SpeechPaused):
                self._recognizer.pause()
            elif self._recognizer is not None and isinstance(event, SpeechResumed):
                self._recognizer.resume()
        if self._onset_chunk:
            self._onset_chunk = False
        elif self._speech_start_ms is not None and self._recognizer is not None:
            await self._partial(await self._recognizer.accept(pcm))

    async def _speech_started(self, offset_ms: int) -> None:
        self._speech_start_ms = offset_ms
        await self._listener.on_speech_started(offset_ms)
        if self._recognizer is not None:
            await self._recognizer.start_utterance()
            self._onset_chunk = True
            await self._partial(await self._recognizer.accept(bytes(self._pre_roll)))

    async def _speech_stopped(self, offset_ms: int, duration_ms: int) -> None:
        start_ms, self._speech_start_ms = self._speech_start_ms, None
        await self._listener.on_speech_stopped(offset_ms, duration_ms)
        if self._recognizer is not None and start_ms is not None:
            transcript = await self._recognizer.finish_utterance()
            if transcript.text.strip():
                await self._listener.on_final(transcript, start_ms, offset_ms)

    async def _partial(self, text: str | None) -> None:
        if text:
            await self._listener.on_partial(text)

    def _keep_pre_roll(self, pcm: bytes) -> None:
        self._pre_roll += pcm
        limit = INPUT_RATE * 2 * (PRE_ROLL_MS + settings.VAD_MIN_SPEECH_MS) // 1000
        del self._pre_roll[:-limit]
