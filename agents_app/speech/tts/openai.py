"""OpenAI speech through the `openai` SDK, as raw PCM so no decoder is needed.

OpenAI's `pcm` format is 24 kHz 16-bit mono little-endian. The endpoint gives no word timings,
so each word's start is estimated (see `estimated_word_marks`).
"""

from __future__ import annotations

import openai
from django.conf import settings

from agents_app.retry import call_with_retry
from agents_app.speech.tts.base import SpeechClip
from agents_app.speech.tts.word_marks import estimated_word_marks
from agents_app.strategies.openai import openai_client, release_client, translate_openai_error

SAMPLE_RATE = 24000


class OpenAISynthesizer:
    """Cloud speech: one request a sentence, answered with raw 24 kHz PCM."""

    def __init__(self, voice: str = "", client: openai.AsyncOpenAI | None = None) -> None:
        self.voice = voice or settings.OPENAI_TTS_VOICE
        self.client = client or openai_client()

    async def synthesize(self, text: str) -> SpeechClip:
        if not text.strip():
            return SpeechClip(text=text, pcm=b"", sample_rate=SAMPLE_RATE)
        pcm = await call_with_retry(lambda: self._speak(text))
        pcm = pcm[: len(pcm) // 2 * 2]  # a cut-off trailing byte is half a sample
        clip = SpeechClip(text=text, pcm=pcm, sample_rate=SAMPLE_RATE)
        clip.words = estimated_word_marks(text, clip.duration_ms)
        return clip

    async def _speak(self, text: str) -> bytes:
        try:
            response = await self.client.audio.speech.create(
                model=settings.OPENAI_TTS_MODEL,
                voice=self.voice,
                input=text,
                response_format="pcm",
            )
            return await response.aread()
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc, "tts") from exc

    async def aclose(self) -> None:
        await release_client(self.client)
