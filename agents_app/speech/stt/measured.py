"""A recognizer timed at its boundary: every STT engine feeds voice_stt_seconds{engine}
(voiceproject/metrics.py) without knowing of it."""

from __future__ import annotations

import time
from typing import Any

from agents_app.speech.stt.base import SpeechRecognizer, Transcript
from voiceproject.metrics import STT_SECONDS


class MeasuredRecognizer:
    """A recognizer whose finals are timed: the wait a caller has after they stop talking."""

    def __init__(self, inner: SpeechRecognizer, engine: str) -> None:
        self.inner = inner
        self._seconds = STT_SECONDS.labels(engine=engine)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def finish_utterance(self) -> Transcript:
        started = time.perf_counter()
        try:
            return await self.inner.finish_utterance()
        finally:
            self._seconds.observe(time.perf_counter() - started)
