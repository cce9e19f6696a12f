"""Speech recognizers, chosen by STT_ENGINE through a small registry."""

from __future__ import annotations

from agents_app.speech import engine_class
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
    """Load an engine's shared model in the background now, so the first caller does not
    wait for it; engines without one (and unknown names, which the system checks report)
    have nothing to do."""
    try:
        cls = engine_class(RECOGNIZERS, "STT_ENGINE", engine)
    except ValueError:
        return
    warm_up = getattr(cls, "warm_up", None)
    if warm_up is not None:
        warm_up()
