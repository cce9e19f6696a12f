"""Test audio made in-process: speech from the project's own espeak engine, silence, noise."""

from __future__ import annotations

from functools import cache

import numpy as np

from agents_app.speech.audio import resample
from agents_app.speech.tts.espeak import synthesize_blocking

# Pocketsphinx recognises espeak's en-us voice best when it speaks slowly.
SPEECH_WPM = 140


@cache
def speech_pcm(text: str, sample_rate: int = 16000, wpm: int = SPEECH_WPM) -> bytes:
    """`text` spoken by espeak-ng (en-us), as PCM16 mono at `sample_rate`."""
    clip = synthesize_blocking(text, voice="en-us", rate_wpm=wpm)
    return resample(clip.pcm, clip.sample_rate, sample_rate)


def silence(ms: int, sample_rate: int = 16000) -> bytes:
    return b"\0\0" * (sample_rate * ms // 1000)


def noise(kind: str, ms: int, sample_rate: int = 16000, dbfs: float = -30.0) -> bytes:
    """Steady noise that fools a plain energy VAD: `brown`, `pink`, `white` or `hum` (60 Hz)."""
    n = sample_rate * ms // 1000
    rng = np.random.default_rng(1234)
    if kind == "hum":
        signal = np.sin(2 * np.pi * 60 * np.arange(n) / sample_rate)
    elif kind == "white":
        signal = rng.standard_normal(n)
    elif kind == "brown":
        signal = np.cumsum(rng.standard_normal(n))
        signal -= np.convolve(signal, np.ones(400) / 400, mode="same")
    elif kind == "pink":
        spectrum = np.fft.rfft(rng.standard_normal(n))
        spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
        signal = np.fft.irfft(spectrum, n)
    else:
        raise ValueError(kind)
    signal = signal / (np.sqrt(np.mean(signal**2)) or 1.0) * (10 ** (dbfs / 20)) * 32767
    return np.clip(signal, -32768, 32767).astype(np.int16).tobytes()


def frames(pcm: bytes, sample_rate: int = 16000, ms: int = 20) -> list[bytes]:
    size = sample_rate * ms // 1000 * 2
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def cough(ms: int = 250, seed: int = 0, sample_rate: int = 16000) -> bytes:
    """A cough-like burst: loud filtered noise that dies away within `ms`."""
    n = sample_rate * ms // 1000
    rng = np.random.default_rng(seed)
    burst = np.convolve(rng.standard_normal(n), np.ones(8) / 8, mode="same")
    burst *= np.exp(-np.linspace(0, 6, n))
    return (burst / np.abs(burst).max() * 0.5 * 32767).astype(np.int16).tobytes()


def clicks(ms: int, every_ms: int = 100, sample_rate: int = 16000) -> bytes:
    """Sharp clicks (a pen, a keyboard) on silence."""
    samples = np.zeros(sample_rate * ms // 1000, dtype=np.int16)
    step = sample_rate * every_ms // 1000
    samples[::step] = 20000
    samples[1::step] = -20000
    return samples.tobytes()


def non_speech_clips() -> dict[str, bytes]:
    """Sounds that are not words, each of which a recognizer must give no text for."""
    return {
        "silence": silence(1000),
        "low noise": noise("white", 1000, dbfs=-45),
        "brown noise": noise("brown", 1000),
        "pink noise": noise("pink", 1000, dbfs=-20),
        "hum": noise("hum", 1000, dbfs=-10),
        "clicks": clicks(1000),
        "cough": cough(250),
        "long cough": cough(400, seed=1) + silence(300),
        "short cough": silence(200) + cough(150, seed=2),
    }


def vocal_burst(ms: int = 150) -> bytes:
    """A short voiced sound, a cough or a throat being cleared: voice for a moment, no words.
    (A synthetic noise burst does not even wake the voice detector.)"""
    return speech_pcm("hello")[: 32 * ms]
