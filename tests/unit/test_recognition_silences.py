"""The recognition worker hands a recording the caller-stream times of a final's redacted
digit runs: mapped from the recognizer's word timings, or the whole utterance without them."""

from __future__ import annotations

import asyncio

import pytest

from agents_app.speech.stt.base import TimedWord, Transcript
from sessions_app.pipeline.recognition import RecognitionWorker
from sessions_app.recording.digit_spans import SILENCE_MARGIN_MS
from sessions_app.vad import VoiceDetection
from tests.speech import frames, silence, speech_pcm

CARD = "my card is 4111 1111 1111 1111"
WORDS = (
    TimedWord("my", 100, 300),
    TimedWord("card", 300, 600),
    TimedWord("is", 600, 700),
    TimedWord("4111", 700, 1000),
    TimedWord("1111", 1000, 1300),
    TimedWord("1111", 1300, 1600),
    TimedWord("1111", 1600, 1900),
)


class FakeRecognizer:
    """Says CARD for every utterance and keeps the audio it was given."""

    def __init__(self, timings: tuple[TimedWord, ...] | None) -> None:
        self.timings = timings
        self.heard = bytearray()

    async def start_utterance(self) -> None:
        self.heard.clear()

    async def accept(self, pcm: bytes) -> str | None:
        self.heard += pcm
        return None

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    async def peek(self) -> str | None:
        return None

    async def finish_utterance(self) -> Transcript:
        return Transcript(text=CARD)

    async def word_timings(self) -> tuple[TimedWord, ...] | None:
        return self.timings

    async def aclose(self) -> None: ...


class Finals:
    """A listener that ends each utterance at the detector's hangover and keeps the finals."""

    def __init__(self) -> None:
        self.done = asyncio.Event()

    def __getattr__(self, name: str):
        async def ignore(*args: object) -> None:
            return None

        return ignore

    def wants_audio_time(self) -> bool:
        return False

    async def on_final(self, transcript: Transcript, start_ms: int, end_ms: int) -> None:
        self.done.set()


async def recognise(timings: tuple[TimedWord, ...] | None) -> tuple[bytes, bytes, list]:
    recognizer, silenced, listener = FakeRecognizer(timings), [], Finals()
    worker = RecognitionWorker(
        listener,
        VoiceDetection.from_settings().new_detector(),
        recognizer,
        sample_rate=16000,
        max_queued_ms=60_000,
        silence_audio=lambda start, end: silenced.append((start, end)),
    )
    stream = silence(800) + speech_pcm("hello there how are you today") + silence(2500)
    for frame in frames(stream):
        worker.feed(frame)
    await asyncio.wait_for(listener.done.wait(), 30)
    await worker.close()
    return stream, bytes(recognizer.heard), silenced


def stream_ms_of(stream: bytes, heard: bytes) -> float:
    """Where the recognizer's audio began in the stream (it is one stretch of it)."""
    at = stream.find(heard)
    assert at >= 0 and at % 2 == 0
    return at / 32


@pytest.mark.django_db
async def test_a_runs_word_times_are_mapped_into_the_stream():
    stream, heard, silenced = await recognise(WORDS)
    start = stream_ms_of(stream, heard)
    assert silenced == [
        pytest.approx((start + 700 - SILENCE_MARGIN_MS, start + 1900 + SILENCE_MARGIN_MS))
    ]


@pytest.mark.django_db
async def test_without_word_times_the_whole_utterance_is_silenced():
    stream, heard, silenced = await recognise(None)
    start = stream_ms_of(stream, heard)
    assert len(silenced) == 1
    silenced_from, silenced_to = silenced[0]
    assert silenced_from == pytest.approx(start)
    assert silenced_to >= start + len(heard) / 32
