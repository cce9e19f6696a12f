"""Speech recognizers, chosen by STT_ENGINE through a small registry."""

from __future__ import annotations

from agents_app.speech import engine_class, warm_up_engine
from agents_app.speech.stt.base import SpeechRecognizer
from agents_app.speech.stt.measured import MeasuredRecognizer

RECOGNIZERS = {
    "whisper": "agents_app.speech.stt.whisper:WhisperRecognizer",
    "pocketsphinx": "agents_app.speech.stt.pocketsphinx:PocketsphinxRecognizer",
    "openai": "agents_app.speech.stt.openai:OpenAIRecognizer",
    "none": None,
}


def build_recognizer(engine: str) -> SpeechRecognizer | None:
    """A recognizer for one session, or None for `none` (the client sends text)."""
    cls = engine_class(RECOGNIZERS, "STT_ENGINE", engine)
    if cls is None:
        return None
    return MeasuredRecognizer(cls(), engine)


def warm_up_recognizer(engine: str) -> None:
    """Load the STT_ENGINE engine's shared model in the background (see `warm_up_engine`)."""
    warm_up_engine(RECOGNIZERS, "STT_ENGINE", engine)
