"""Speech recognizers, chosen by STT_ENGINE through a small registry."""

from __future__ import annotations

from agents_app.speech import engine_class
from agents_app.speech.stt.base import SpeechRecognizer

RECOGNIZERS = {
    "pocketsphinx": "agents_app.speech.stt.pocketsphinx:PocketsphinxRecognizer",
    "openai": "agents_app.speech.stt.openai:OpenAIRecognizer",
    "none": None,
}


def build_recognizer(engine: str) -> SpeechRecognizer | None:
    """A recognizer for one session, or None for `none` (the client sends text)."""
    cls = engine_class(RECOGNIZERS, "STT_ENGINE", engine)
    return None if cls is None else cls()
