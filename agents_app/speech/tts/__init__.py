"""Speech synthesizers, chosen by TTS_ENGINE through a small registry."""

from __future__ import annotations

from agents_app.speech import engine_class
from agents_app.speech.tts.base import SpeechSynthesizer
from agents_app.speech.tts.measured import MeasuredSynthesizer

# Engine name → "module:class"; `none` means text-only replies (no audio at all).
SYNTHESIZERS = {
    "espeak": "agents_app.speech.tts.espeak:EspeakSynthesizer",
    "openai": "agents_app.speech.tts.openai:OpenAISynthesizer",
    "piper": "agents_app.speech.tts.piper:PiperSynthesizer",
    "silent": "agents_app.speech.tts.silent:SilentSynthesizer",
    "none": None,
}


def build_synthesizer(engine: str, voice: str) -> SpeechSynthesizer | None:
    """A synthesizer for one session, or None for `none` (text replies only)."""
    cls = engine_class(SYNTHESIZERS, "TTS_ENGINE", engine)
    if cls is None:
        return None
    return MeasuredSynthesizer(cls(voice=voice), engine)
