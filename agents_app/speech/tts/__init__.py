"""Speech synthesizers, chosen by TTS_ENGINE through a small registry."""

from __future__ import annotations

from importlib import import_module

from agents_app.speech.tts.base import SpeechSynthesizer

# Engine name → "module:class"; `none` means text-only replies (no audio at all).
SYNTHESIZERS = {
    "espeak": "agents_app.speech.tts.espeak:EspeakSynthesizer",
    "openai": "agents_app.speech.tts.openai:OpenAISynthesizer",
    "silent": "agents_app.speech.tts.silent:SilentSynthesizer",
    "none": None,
}


def build_synthesizer(engine: str, voice: str) -> SpeechSynthesizer | None:
    if engine not in SYNTHESIZERS:
        raise ValueError(f"unknown TTS_ENGINE {engine!r}; expected one of {sorted(SYNTHESIZERS)}")
    target = SYNTHESIZERS[engine]
    if target is None:
        return None
    module, name = target.split(":")
    return getattr(import_module(module), name)(voice=voice)
