"""The speech synthesizer contract, run once per engine (espeak, silent; openai in integration)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator

import numpy as np
import pytest

from agents_app.speech.tts import espeak
from agents_app.speech.tts.base import SpeechClip, SpeechSynthesizer
from agents_app.speech.tts.espeak import EspeakSynthesizer
from agents_app.speech.tts.silent import SilentSynthesizer

SHORT = "Good morning, friend."
LONG = "Your order left our warehouse this morning and should arrive by Friday."

# About -40 dBFS: quieter than any voice, louder than dither.
SOUND_RMS_FLOOR = 300.0


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


def spoken(text: str) -> str:
    """The text without its closing punctuation, which has no sound of its own."""
    return text.rstrip(".!?")


class SynthesizerContract:
    """What every engine promises; a subclass provides the `synthesizer` fixture."""

    sample_rate: int
    makes_sound: bool = True

    async def test_a_sentence_gives_even_length_pcm_at_the_clip_rate(
        self, synthesizer: SpeechSynthesizer
    ):
        clip = await synthesizer.synthesize(SHORT)

        assert clip.text == SHORT
        assert clip.sample_rate == self.sample_rate
        assert len(clip.pcm) > 0
        assert len(clip.pcm) % 2 == 0

    async def test_a_longer_sentence_lasts_longer(self, synthesizer: SpeechSynthesizer):
        short = await synthesizer.synthesize(SHORT)
        long = await synthesizer.synthesize(LONG)

        assert long.duration_ms > short.duration_ms

    async def test_word_marks_are_in_order_inside_the_clip_and_cover_every_word(
        self, synthesizer: SpeechSynthesizer
    ):
        clip = await synthesizer.synthesize(LONG)

        times = [mark.audio_ms for mark in clip.words]
        assert times == sorted(times)
        assert all(0 <= t < clip.duration_ms for t in times)
        word_starts = [match.start() for match in re.finditer(r"\S+", LONG)]
        assert [mark.start for mark in clip.words] == word_starts
        for mark in clip.words:
            assert LONG[mark.start : mark.end].strip(".,") != ""

    async def test_heard_text_is_a_growing_prefix_and_the_whole_sentence_at_the_end(
        self, synthesizer: SpeechSynthesizer
    ):
        clip = await synthesizer.synthesize(LONG)
        steps = [clip.duration_ms * i / 100 for i in range(101)]

        heard = [clip.heard_text(ms) for ms in steps]

        assert heard[0] == ""
        assert all(LONG.startswith(text) for text in heard)
        assert [len(text) for text in heard] == sorted(len(text) for text in heard)
        assert len(set(heard)) > len(LONG.split()) // 2
        assert spoken(heard[-1]) == spoken(LONG)

    async def test_the_audio_is_sound_or_silence_as_the_engine_promises(
        self, synthesizer: SpeechSynthesizer
    ):
        clip = await synthesizer.synthesize(LONG)

        if self.makes_sound:
            assert rms(clip.pcm) > SOUND_RMS_FLOOR
        else:
            assert clip.pcm == bytes(len(clip.pcm))


class TestEspeakSynthesizer(SynthesizerContract):
    sample_rate = 22050

    @pytest.fixture
    async def synthesizer(self) -> AsyncIterator[EspeakSynthesizer]:
        synthesizer = EspeakSynthesizer()
        yield synthesizer
        await synthesizer.aclose()

    async def test_concurrent_calls_all_succeed_off_the_event_loop(self, monkeypatch, synthesizer):
        real = espeak.synthesize_blocking
        running, most_running, loop_ran = [0], [0], threading.Event()
        guard = threading.Lock()

        def observed(*args: object) -> SpeechClip:
            with guard:
                running[0] += 1
                most_running[0] = max(most_running[0], running[0])
            try:
                clip = real(*args)
                # Finish only once the loop has run meanwhile; a blocked loop never does.
                loop_ran.wait(timeout=5)
                return clip
            finally:
                with guard:
                    running[0] -= 1

        monkeypatch.setattr(espeak, "synthesize_blocking", observed)
        work = asyncio.gather(synthesizer.synthesize(SHORT), synthesizer.synthesize(LONG))
        ticks_while_synthesizing = 0
        while not work.done():
            if running[0]:
                ticks_while_synthesizing += 1
                loop_ran.set()
            await asyncio.sleep(0)
        short, long = await work

        assert ticks_while_synthesizing > 0
        assert most_running[0] == 1
        assert (short.text, long.text) == (SHORT, LONG)
        assert short.pcm and long.pcm
        assert long.duration_ms > short.duration_ms


class TestSilentSynthesizer(SynthesizerContract):
    sample_rate = 16000
    makes_sound = False

    @pytest.fixture
    async def synthesizer(self) -> AsyncIterator[SilentSynthesizer]:
        synthesizer = SilentSynthesizer()
        yield synthesizer
        await synthesizer.aclose()
