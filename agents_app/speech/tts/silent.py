"""A synthesizer that speaks silence: real timing (a fixed pace per word), no sound.

Tests use it to exercise playback and barge-in deterministically and without an engine.
"""

from __future__ import annotations

import re

from agents_app.speech.tts.base import SpeechClip, WordMark

SAMPLE_RATE = 16000
MS_PER_WORD = 300


class SilentSynthesizer:
    def __init__(self, voice: str = "", ms_per_word: int = MS_PER_WORD) -> None:
        self.ms_per_word = ms_per_word

    async def synthesize(self, text: str) -> SpeechClip:
        words = [
            WordMark(start=match.start(), end=match.end(), audio_ms=index * self.ms_per_word)
            for index, match in enumerate(re.finditer(r"\S+", text))
        ]
        samples = SAMPLE_RATE * self.ms_per_word * len(words) // 1000
        return SpeechClip(text=text, pcm=b"\0\0" * samples, sample_rate=SAMPLE_RATE, words=words)

    async def aclose(self) -> None:
        return None
