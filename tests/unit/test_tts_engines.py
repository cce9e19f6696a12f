"""The speech synthesizer contract, run once per engine (espeak, piper, silent; openai in
integration), and what piper's word marks promise after a barge-in."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator

import numpy as np
import pytest

from agents_app.errors import ProviderRejected, ProviderUnavailable
from agents_app.speech.tts import espeak, piper
from agents_app.speech.tts.base import SpeechClip, SpeechSynthesizer
from agents_app.speech.tts.espeak import EspeakSynthesizer
from agents_app.speech.tts.piper import PiperSynthesizer
from agents_app.speech.tts.silent import SilentSynthesizer
from agents_app.speech.tts.word_marks import aligned_word_marks

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


# Punctuation, numbers, symbols, abbreviations, apostrophes and several sentences: words that
# piper speaks as several words ("$12.50") or runs together ("Well... okay").
TRICKY = (
    "Well... okay, it's 3:45 pm; Dr. Smith paid $12.50 for 2 apples! "
    "Isn't that odd -- or is it? The U.S.A. e.g. ships rock'n'roll to 1,000,000 people."
)
# Said far longer than spelled ("three forty-five p m"): a guess from spelling would be wrong.
PAUSED = "At 3:45 pm, we open the doors."


def silent_gaps(clip: SpeechClip, frame_ms: int = 10) -> list[tuple[int, int]]:
    """(start, end) ms of each run of near-silent frames between the first and last sound."""
    size = clip.sample_rate * frame_ms // 1000
    samples = np.frombuffer(clip.pcm, dtype=np.int16).astype(np.float64)
    frames = samples[: len(samples) // size * size].reshape(-1, size)
    loud = list(np.sqrt((frames**2).mean(axis=1)) > SOUND_RMS_FLOOR)
    first, last = loud.index(True), len(loud) - loud[::-1].index(True)
    gaps, start = [], None
    for index in range(first, last):
        if not loud[index] and start is None:
            start = index
        elif loud[index] and start is not None:
            gaps.append((start * frame_ms, index * frame_ms))
            start = None
    return gaps


class TestPiperSynthesizer(SynthesizerContract):
    sample_rate = 22050

    @pytest.fixture
    async def synthesizer(self) -> AsyncIterator[PiperSynthesizer]:
        synthesizer = PiperSynthesizer()
        yield synthesizer
        await synthesizer.aclose()

    async def test_marks_of_a_tricky_text_rise_inside_the_clip_one_per_word(self, synthesizer):
        clip = await synthesizer.synthesize(TRICKY)

        times = [mark.audio_ms for mark in clip.words]
        assert [mark.start for mark in clip.words] == [
            m.start() for m in re.finditer(r"\S+", TRICKY)
        ]
        assert [TRICKY[mark.start : mark.end] for mark in clip.words] == TRICKY.split()
        assert times == sorted(times)
        assert all(0 <= t < clip.duration_ms for t in times)
        # Spoken words take time: few marks share a start (only words with no sound, "--").
        assert len(set(times)) >= len(times) - 1
        assert times[-1] > clip.duration_ms / 2

    async def test_a_cut_clip_was_heard_up_to_a_word_boundary(self, synthesizer):
        clip = await synthesizer.synthesize(TRICKY)

        for percent in range(1, 100):
            heard = clip.heard_text(clip.duration_ms * percent / 100)
            assert TRICKY.startswith(heard)
            assert heard == "" or len(heard) == len(TRICKY) or TRICKY[len(heard)] == " "

    async def test_a_cut_in_the_pause_after_a_comma_hears_the_first_clause(self, synthesizer):
        clip = await synthesizer.synthesize(PAUSED)
        pause_start, pause_end = max(silent_gaps(clip), key=lambda gap: gap[1] - gap[0])

        after_comma = clip.words[3]

        assert clip.heard_text((pause_start + pause_end) / 2) == "At 3:45 pm,"
        assert PAUSED[after_comma.start : after_comma.end] == "we"
        assert abs(after_comma.audio_ms - pause_end) < 50  # its mark is where its sound starts

    async def test_an_unknown_voice_is_rejected_clearly(self):
        with pytest.raises(ProviderRejected, match="no voice 'en_GB-nobody'") as caught:
            await PiperSynthesizer(voice="en_GB-nobody").synthesize(SHORT)

        assert caught.value.code == "tts_rejected"

    async def test_a_voice_that_fails_to_load_is_reported_as_unavailable(self, monkeypatch):
        def broken(name: str) -> object:
            raise OSError(f"no such file: {name}.onnx")

        monkeypatch.setattr(piper, "_voices", {})
        monkeypatch.setattr(piper, "load_voice", broken)

        with pytest.raises(ProviderUnavailable, match="could not load voice") as caught:
            await PiperSynthesizer().synthesize(SHORT)

        assert caught.value.code == "tts_unavailable"

    async def test_every_session_shares_one_loaded_voice(self, monkeypatch):
        loads = []

        def counted(name: str) -> object:
            loads.append(name)
            return real_load(name)

        real_load = piper.load_voice
        monkeypatch.setattr(piper, "_voices", {})
        monkeypatch.setattr(piper, "load_voice", counted)

        clips = await asyncio.gather(*(PiperSynthesizer().synthesize(SHORT) for _ in range(3)))

        assert loads == [piper.DEFAULT_VOICE]
        assert all(clip.pcm for clip in clips)

    async def test_the_event_loop_runs_while_piper_synthesises(self, synthesizer):
        work = asyncio.ensure_future(synthesizer.synthesize(LONG))
        ticks = 0
        while not work.done():
            ticks += 1
            await asyncio.sleep(0.001)

        assert (await work).pcm
        assert ticks > 5


def test_word_phonemes_are_found_where_they_were_spoken():
    text = "Pay $5 now"  # "$5" is said "five dollars": one word, two spoken
    word_phonemes = [
        ["p", "e", "ɪ"],
        ["f", "a", "ɪ", "v", "d", "ɑ", "l", "ɚ", "z"],
        ["n", "a", "ʊ"],
    ]
    spoken_phonemes = "peɪfaɪvdɑlɚznaʊ"
    spoken = [(phoneme, 100 * index) for index, phoneme in enumerate(spoken_phonemes)]

    marks = aligned_word_marks(text, word_phonemes, spoken, sample_rate=1000)

    assert [(text[m.start : m.end], m.audio_ms) for m in marks] == [
        ("Pay", 0),
        ("$5", 300),
        ("now", 1200),
    ]


def test_a_word_with_no_sound_starts_after_the_word_before():
    text = "Yes -- no"
    spoken = [(phoneme, 10 * index) for index, phoneme in enumerate("jɛsnoʊ")]

    marks = aligned_word_marks(text, [["j", "ɛ", "s"], [], ["n", "o", "ʊ"]], spoken, 1000)

    assert [m.audio_ms for m in marks] == [0, 30, 30]


class TestSilentSynthesizer(SynthesizerContract):
    sample_rate = 16000
    makes_sound = False

    @pytest.fixture
    async def synthesizer(self) -> AsyncIterator[SilentSynthesizer]:
        synthesizer = SilentSynthesizer()
        yield synthesizer
        await synthesizer.aclose()
