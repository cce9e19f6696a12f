"""OpenAI transcription through the `openai` SDK: one request per utterance, no partials.

The endpoint takes whole files, so the utterance's audio is buffered and sent as a WAV when the
voice detector says it ended. The SDK's retries are off; our retry policy applies instead.
"""

from __future__ import annotations

import openai
from django.conf import settings

from agents_app.retry import call_with_retry
from agents_app.speech.audio import to_wav
from agents_app.speech.stt.base import INPUT_RATE, TimedWord, Transcript
from agents_app.strategies.openai import openai_client, release_client, translate_openai_error

# Only whisper-1 answers `verbose_json` with word times; the gpt-4o transcribe models give text.
WORD_TIMING_MODELS = frozenset({"whisper-1"})


class OpenAIRecognizer:
    """Cloud recognition: buffers each utterance and transcribes it in one request."""

    def __init__(self, client: openai.AsyncOpenAI | None = None) -> None:
        self.client = client or openai_client()
        self._audio = bytearray()
        self._words: tuple[TimedWord, ...] | None = None  # of the last final, if the model tells

    async def start_utterance(self) -> None:
        self._audio.clear()

    async def accept(self, pcm: bytes) -> str | None:
        """Buffer the audio; the endpoint gives no partial hypotheses."""
        self.accept_now(pcm)
        return None

    def accept_now(self, pcm: bytes) -> None:
        """`accept` without awaiting (buffering is all it does), so the recognition worker
        can hear a speaking caller's audio without waking its task for each frame."""
        self._audio.extend(pcm)

    def pause(self) -> None:
        """One request per utterance, sent when it ends: a pause changes nothing."""

    def resume(self) -> None:
        """See `pause`."""

    async def peek(self) -> str | None:
        """No words before the utterance ends: one request, sent then."""
        return None

    async def finish_utterance(self) -> Transcript:
        pcm = bytes(self._audio)
        self._audio.clear()
        self._words = None
        if not pcm:
            return Transcript(text="")
        wav = to_wav(pcm, INPUT_RATE)
        text, self._words = await call_with_retry(lambda: self._transcribe(wav))
        return Transcript(text=text.strip())

    async def _transcribe(self, wav: bytes) -> tuple[str, tuple[TimedWord, ...] | None]:
        timed = settings.OPENAI_STT_MODEL in WORD_TIMING_MODELS
        options = {"response_format": "verbose_json", "timestamp_granularities": ["word"]}
        try:
            result = await self.client.audio.transcriptions.create(
                model=settings.OPENAI_STT_MODEL,
                file=("utterance.wav", wav, "audio/wav"),
                **(options if timed else {}),
            )
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc, "stt") from exc
        if not timed:
            return result.text, None
        words = tuple(
            TimedWord(word.word, word.start * 1000, word.end * 1000)
            for word in getattr(result, "words", None) or ()
        )
        return result.text, words

    async def word_timings(self) -> tuple[TimedWord, ...] | None:
        """The last final's word times: whisper-1 gives them (verbose_json); the gpt-4o
        transcribe models do not, and a recording then silences the whole utterance that
        must hide a part."""
        return self._words

    async def aclose(self) -> None:
        await release_client(self.client)
