"""A synthesizer timed at its boundary: every TTS engine feeds voice_tts_seconds{engine}
(voiceproject/metrics.py) without knowing of it."""

from __future__ import annotations

import time
from typing import Any

from agents_app.speech.tts.base import SpeechClip, SpeechSynthesizer
from voiceproject.metrics import TTS_SECONDS


class MeasuredSynthesizer:
    """A synthesizer whose sentences are timed."""

    def __init__(self, inner: SpeechSynthesizer, engine: str) -> None:
        self.inner = inner
        self._seconds = TTS_SECONDS.labels(engine=engine)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def synthesize(self, text: str) -> SpeechClip:
        started = time.perf_counter()
        try:
            return await self.inner.synthesize(text)
        finally:
            self._seconds.observe(time.perf_counter() - started)
