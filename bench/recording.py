"""Call recordings: what a recorded call costs, and what silencing a spoken card number adds.

In this process, no server. Reported:

  decode / align   Whisper (WHISPER_MODEL) decoding an utterance that holds a card number,
                   and aligning its words to silence the run (run only for such utterances:
                   an ordinary turn costs nothing extra), p50/p90 over the rounds
  frame            the Recorder's work per 20 ms of call: a caller frame heard and an agent
                   frame played (on the event loop), p50/p90
  spool            writing a 10-minute call's settled audio to the spool and saving the WAV
                   (in a thread, off the event loop), and the peak Python memory held meanwhile

    python bench/recording.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import tracemalloc
import uuid

import django
import harness

django.setup()  # harness has put the repository on the path and named the settings

from django.conf import settings  # noqa: E402

from agents_app.speech.stt.whisper import DecoderOptions, WhisperDecoder  # noqa: E402
from sessions_app.recording.recorder import Recorder  # noqa: E402
from sessions_app.recording.session_recording import SessionRecording  # noqa: E402
from tests.speech import silence, speech_pcm  # noqa: E402

UTTERANCE = "my card number is 4 5 3 2 7 1 8 8 0 3 6 1 2 9 0 4 thank you"
FRAME = 640  # 20 ms at 16 kHz


def whisper_rows(rounds: int) -> list[list[object]]:
    decoder = WhisperDecoder(settings.WHISPER_MODEL, threads=1, options=DecoderOptions())
    pcm = silence(300) + speech_pcm(UTTERANCE) + silence(300)
    decode_ms, align_ms = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        text = decoder.transcribe(pcm).text
        decode_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        decoder.word_timings(pcm, text)
        align_ms.append((time.perf_counter() - started) * 1000)
    seconds = len(pcm) / 32000
    return [
        [f"decode ({seconds:.1f} s)", *percentiles(decode_ms)],
        [f"align ({seconds:.1f} s)", *percentiles(align_ms)],
    ]


def frame_row(frames: int) -> list[object]:
    recorder = Recorder(16000, window_s=30)
    caller, agent = bytes(range(256)) * 2 + bytes(128), bytes(FRAME)
    costs = []
    for _ in range(frames):
        started = time.perf_counter()
        recorder.play(agent)
        recorder.hear(caller)
        costs.append((time.perf_counter() - started) * 1e6)
    return ["frame (µs)", *(f"{value:.1f}" for value in percentile_values(costs))]


async def spool_row(minutes: int) -> list[object]:
    with tempfile.TemporaryDirectory() as media:
        settings.MEDIA_ROOT = media
        recording = SessionRecording(uuid.uuid4(), lambda: 16000, window_s=30, max_s=3600)
        frame = bytes(FRAME)
        tracemalloc.start()
        started = time.perf_counter()
        for _ in range(minutes * 60 * 50):
            recording.play(frame)
            await recording.hear(frame)
        await recording.save()
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return [f"{minutes} min call", f"{elapsed * 1000:.0f} ms total", f"peak {peak / 2**20:.1f} MiB"]


def percentile_values(values: list[float]) -> tuple[float, float]:
    return harness.percentile(values, 50), harness.percentile(values, 90)


def percentiles(values: list[float]) -> tuple[str, str]:
    return tuple(harness.ms(value) for value in percentile_values(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    harness.print_table(["whisper (ms)", "p50", "p90"], whisper_rows(args.rounds))
    print()
    harness.print_table(["recorder", "p50", "p90"], [frame_row(50 * 60)])
    print()
    harness.print_table(["spool", "wall", "memory"], [asyncio.run(spool_row(10))])


if __name__ == "__main__":
    main()
