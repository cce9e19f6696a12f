"""eSpeak NG through ctypes, with the library and its data from the espeakng-loader wheel.

libespeak-ng is process-global and not thread-safe, so every call runs on one dedicated
thread; synthesis is fast (a few ms for seconds of speech), so one thread serves many sessions.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import espeakng_loader
from django.conf import settings

from agents_app.errors import ProviderRejected
from agents_app.speech.tts.base import SpeechClip, WordMark

AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
CHARS_UTF8 = 1
EVENT_LIST_TERMINATED = 0
EVENT_WORD = 1
PARAMETER_RATE = 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class _Espeak:
    """The loaded library; use only from the engine thread."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_Callback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        data_path = espeakng_loader.get_data_path().encode()
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
        if self.sample_rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise")
        self._lib = lib
        self._chunks: list[bytes] = []
        self._words: list[tuple[int, int, int]] = []
        self._callback = _Callback(self._on_audio)  # kept alive as long as the library uses it
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(ctypes.string_at(wav, num_samples * 2))
        index = 0
        while events[index].type != EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == EVENT_WORD:
                self._words.append((event.text_position, event.length, event.audio_position))
            index += 1
        return 0

    def synthesize(self, text: str, voice: str, rate_wpm: int) -> SpeechClip:
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ProviderRejected(f"espeak-ng has no voice {voice!r}", role="tts")
        self._lib.espeak_SetParameter(PARAMETER_RATE, rate_wpm, 0)
        self._chunks, self._words = [], []
        encoded = text.encode()
        buffer = ctypes.create_string_buffer(encoded)
        size = len(encoded) + 1
        self._lib.espeak_Synth(buffer, size, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        return SpeechClip(
            text=text,
            pcm=b"".join(self._chunks),
            sample_rate=self.sample_rate,
            words=_word_marks(text, self._words),
        )


def _word_marks(text: str, words: list[tuple[int, int, int]]) -> list[WordMark]:
    """Word marks from espeak's word events: it counts characters from 1, and its word lengths
    stop short at apostrophes ("isn't" → "isn"), so a word runs to the next space instead."""
    marks = []
    for position, _length, audio_ms in words:
        start = position - 1
        space = text.find(" ", start)
        marks.append(
            WordMark(start=start, end=len(text) if space < 0 else space, audio_ms=audio_ms)
        )
    return marks


_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="espeak")
_lock = threading.Lock()


@cache
def _library() -> _Espeak:
    return _Espeak()


def synthesize_blocking(text: str, voice: str = "en-us", rate_wpm: int = 175) -> SpeechClip:
    """Synthesise now, blocking the caller (for scripts, benchmarks and tests)."""
    with _lock:
        return _library().synthesize(text, voice, rate_wpm)


class EspeakSynthesizer:
    """Offline speech: a clip a sentence, synthesised on the engine's one thread."""

    def __init__(self, voice: str = "", rate_wpm: int | None = None) -> None:
        self.voice = voice or "en-us"
        self.rate_wpm = rate_wpm or settings.TTS_RATE_WPM

    async def synthesize(self, text: str) -> SpeechClip:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            _executor, synthesize_blocking, text, self.voice, self.rate_wpm
        )

    async def aclose(self) -> None:
        return None
