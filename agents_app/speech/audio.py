"""PCM16 mono helpers shared by every engine and worker: durations, resampling, framing."""

from __future__ import annotations

import asyncio
import io
import wave

import numpy as np
import soxr


def duration_ms(pcm: bytes, sample_rate: int) -> float:
    return len(pcm) / 2 / sample_rate * 1000


def frame_bytes(sample_rate: int, frame_ms: int) -> int:
    return sample_rate * frame_ms // 1000 * 2


class StreamResampler:
    """Resamples a PCM16 stream chunk by chunk with soxr, keeping filter state between chunks."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = (
            soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality="HQ")
            if in_rate != out_rate
            else None
        )

    def __call__(self, pcm: bytes, last: bool = False) -> bytes:
        if self._stream is None:
            return pcm
        samples = np.frombuffer(pcm, dtype=np.int16)
        return self._stream.resample_chunk(samples, last=last).tobytes()


def resample(pcm: bytes, in_rate: int, out_rate: int) -> bytes:
    """Resample a whole clip."""
    if in_rate == out_rate:
        return pcm
    samples = np.frombuffer(pcm, dtype=np.int16)
    return soxr.resample(samples, in_rate, out_rate, quality="HQ").astype(np.int16).tobytes()


async def resample_off_loop(pcm: bytes, in_rate: int, out_rate: int) -> bytes:
    """`resample` in a worker thread (soxr lets go of the GIL): a sentence of speech costs
    about a millisecond, which the event loop spent on every reply (2 % of it at 96 sessions,
    bench/load.py with py-spy)."""
    if in_rate == out_rate:
        return pcm
    return await asyncio.to_thread(resample, pcm, in_rate, out_rate)


def to_wav(pcm: bytes, sample_rate: int) -> bytes:
    """A WAV file of PCM16 mono, for engines that take files."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


def from_wav(data: bytes) -> tuple[bytes, int]:
    """PCM16 mono samples and rate of a WAV file."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError("expected 16-bit mono WAV")
        return wav.readframes(wav.getnframes()), wav.getframerate()
