"""Playback pacing alone: what N replies playing at once cost one process, and how even they run.

N PlaybackWorkers each speak a clip (a fake synthesizer: no engine time) into a send path that
only records when each frame left, all in this one event loop. For each N, for
`--seconds`: the process's CPU per frame (pacing, slicing, the send call; no socket), and how
much audio a client playing each reply out from its first frame held as each frame came: a
frame that came after the buffer ran dry is an audible gap. It measures the pacing code of
whichever tree is on PYTHONPATH, so the same script compares two versions of playback.py.

    python bench/playback_pacing.py [--sessions 50,100,200,400] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import harness
import numpy as np

RATE = 16000
FRAME_MS = 20
LEAD_MS = 80


class Clip:
    def __init__(self, seconds: float) -> None:
        self.pcm = bytes(int(RATE * seconds) * 2)

    async def synthesize(self, text: str):
        from agents_app.speech.tts.base import SpeechClip, WordMark

        return SpeechClip(text, self.pcm, RATE, [WordMark(0, len(text), 0)])

    async def aclose(self) -> None:
        pass


async def run(count: int, seconds: float) -> list[object]:
    from sessions_app.pipeline.playback import PlaybackWorker

    loop = asyncio.get_running_loop()
    sent: list[list[float]] = [[] for _ in range(count)]

    def sender(index: int):
        times = sent[index]

        async def send_audio(frame: bytes) -> None:
            times.append(loop.time())

        return send_audio

    async def ignore(_event) -> None:
        pass

    clip = Clip(seconds + 1)
    workers = []
    for index in range(count):
        worker = PlaybackWorker(
            clip,
            turn=1,
            sample_rate=RATE,
            send_audio=sender(index),
            send_event=ignore,
            report=ignore,
            frame_ms=FRAME_MS,
            lead_ms=LEAD_MS,
        )
        worker.speak("a long reply")
        worker.finish()
        workers.append(worker)
        await asyncio.sleep(FRAME_MS / 1000 / count)  # replies start spread over a frame
    await asyncio.sleep(0.5)  # every reply is playing
    cpu, wall = time.process_time(), time.monotonic()
    marks = [len(times) for times in sent]
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    frames = sum(len(times) - mark for times, mark in zip(sent, marks, strict=True))
    for worker in workers:
        worker.stop()
    gaps, ahead = 0, []
    for times in sent:  # a client playing each reply out from its first frame
        playout = times[0]
        for at in times:
            if at > playout:  # its buffer ran dry: an audible gap, then it plays on from here
                gaps, playout = gaps + 1, at
            ahead.append((playout - at) * 1000)
            playout += FRAME_MS / 1000
    ahead_ms = np.array(ahead)
    return [
        count,
        frames,
        f"{cpu / wall * 100:.0f}",
        f"{cpu / max(frames, 1) * 1e6:.1f}",
        f"{np.percentile(ahead_ms, 1):.1f}",
        f"{ahead_ms.max():.1f}",
        gaps,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", default="50,100,200,400")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    import django

    django.setup()
    rows = [asyncio.run(run(int(n), args.seconds)) for n in args.sessions.split(",")]
    headers = ["N", "frames", "cpu %", "cpu µs/frame", "ahead p1 ms", "ahead max ms", "gaps"]
    harness.print_table(headers, rows)
    print(
        "ahead: audio a client playing each reply out held when a frame came (lead "
        f"{LEAD_MS} ms); gaps: frames that came after its buffer ran dry (audible)."
    )


if __name__ == "__main__":
    main()
