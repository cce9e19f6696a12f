"""Speech recognizers, chosen by STT_ENGINE through a small registry."""

from __future__ import annotations

from importlib import import_module

from agents_app.speech.stt.base import SpeechRecognizer

# Engine name → "module:class"; imported on first use so unused engines cost nothing.
RECOGNIZERS = {
    "pocketsphinx": "agents_app.speech.stt.pocketsphinx:PocketsphinxRecognizer",
    "openai": "agents_app.speech.stt.openai:OpenAIRecognizer",
    "none": None,
}


def build_recognizer(engine: str) -> SpeechRecognizer | None:
    """A recognizer for one session, or None for `none` (the client sends text)."""
    if engine not in RECOGNIZERS:
        raise ValueError(f"unknown STT_ENGINE {engine!r}; expected one of {sorted(RECOGNIZERS)}")
    target = RECOGNIZERS[engine]
    if target is None:
        return None
    module, name = target.split(":")
    return getattr(import_module(module), name)()
