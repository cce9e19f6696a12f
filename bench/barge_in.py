"""Barge-in latency: the caller talks over the agent; how soon does the agent fall silent?

Each trial opens a new echo session and streams microphone frames in real time from the start
(silence, as an open microphone sends). A long typed utterance makes the agent speak for many
seconds; after `playback_started` and ~0.5 s of agent audio, espeak speech ("excuse me, stop
please, I have a question") replaces the silence, one 20 ms frame every 20 ms of a monotonic
clock. Onset is the send time of the clip's first voiced frame (RMS above a floor). The clip
starts at a different one of 8 frame positions each trial (up to 140 ms later): the server's VAD
scores 32 ms windows, and where speech begins within one changes when it is confirmed. Measured
on the client, over loopback:

  (a) onset -> `barge_in` event received
  (b) onset -> the last agent audio frame received (read until 0.5 s passes without any)

and checked: a `barge_in` arrived, and no agent audio frame arrived after it (frames of a later
turn, after its own `playback_started`, are not the cut turn's and are not counted).

    python bench/barge_in.py [--trials 20] [--layer memory|redis|both] [--url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import harness

SPEECH_TEXT = "excuse me, stop please, I have a question"
AGENT_TEXT = (
    "I would like to hear everything about my account today. "
    "Please read me every transaction from last month, one by one, slowly. "
    "Then tell me about the savings plans you offer and how their interest rates compare. "
    "After that, explain the fees on international transfers and when they apply. "
    "Finally, remind me when my next statement is due and how I can pay it online."
)
AGENT_AUDIO_BEFORE_SPEECH_MS = 500
QUIET_S = 0.5
WAIT_FOR_AGENT_S = 15.0
BARGE_IN_GRACE_S = 2.0  # after the clip ends, how long a barge_in may still take
TRIAL_LIMIT_S = 30.0
VAD_MIN_SPEECH_MS = 200  # the server's default; a setting there, a note here
# 20 ms frames and the VAD's 32 ms windows line up again every 160 ms: 8 frame positions. When
# speech is confirmed depends on where it starts in a window, so trials rotate through all 8.
ALIGNMENTS = 8


@dataclass
class Trial:
    """What one trial saw, in client monotonic seconds."""

    onset: float | None = None
    speech_started: float | None = None
    barge_in: float | None = None
    barge_in_event: dict = field(default_factory=dict)
    last_agent_frame: float | None = None
    frames_after_barge_in: int = 0
    failure: str | None = None
    errors: list[str] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    frames_before_clip: int | None = None
    alignment: int = 0

    def agent_frame(self, received: float) -> None:
        """An agent audio frame arrived (counted as late if after the barge-in)."""
        self.last_agent_frame = received
        if self.barge_in is not None:
            self.frames_after_barge_in += 1

    def since_onset_ms(self, moment: float | None) -> float | None:
        if self.onset is None or moment is None:
            return None
        return (moment - self.onset) * 1000


class Microphone:
    """Sends 20 ms frames at real-time pace: silence, then the clip once `speak()` is called.

    Frame k is due at start + k * 20 ms of the monotonic clock, so sleep overshoot never
    accumulates; a late frame is sent at once and its lateness recorded.
    """

    def __init__(
        self,
        send: Callable[[bytes], Awaitable[None]],
        clip: list[bytes],
        voiced_index: int,
        alignment: int,
    ) -> None:
        self._send = send
        self._clip = clip
        self._voiced_index = voiced_index
        self._alignment = alignment % ALIGNMENTS
        self._speaking = False
        self.onset: float | None = None
        self.clip_end: float | None = None
        self.frames_before_clip: int | None = None
        self.lateness: list[float] = []
        self.failure: str | None = None
        self._task = asyncio.create_task(self._stream())

    def speak(self) -> None:
        self._speaking = True

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.wait([self._task])
        if not self._task.cancelled() and self._task.exception() is not None:
            self.failure = f"microphone stopped: {self._task.exception()!r}"

    async def _stream(self) -> None:
        start = time.monotonic()
        clip_position: int | None = None
        max_frames = int(TRIAL_LIMIT_S * 1000 / harness.FRAME_MS)
        for index in range(max_frames):
            due = start + index * harness.FRAME_MS / 1000
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            starts = self._speaking and index % ALIGNMENTS == self._alignment
            if starts and clip_position is None:
                clip_position, self.frames_before_clip = 0, index
            in_clip = clip_position is not None and clip_position < len(self._clip)
            frame = self._clip[clip_position] if in_clip else harness.SILENT_FRAME
            sent_at = time.monotonic()
            await self._send(frame)
            self.lateness.append(sent_at - due)
            if in_clip:
                if clip_position == self._voiced_index:
                    self.onset = sent_at
                clip_position += 1
                if clip_position == len(self._clip):
                    self.clip_end = sent_at


async def run_trial(
    http: aiohttp.ClientSession,
    base_url: str,
    clip: list[bytes],
    voiced_index: int,
    alignment: int,
) -> Trial:
    trial = Trial(alignment=alignment % ALIGNMENTS)
    ws = await harness.open_stream(http, base_url)
    microphone = Microphone(ws.send_bytes, clip, voiced_index, alignment)
    try:
        await ws.send_json({"type": "text", "text": AGENT_TEXT, "final": True})
        await follow_trial(ws, microphone, trial)
    finally:
        await microphone.close()
        trial.onset = microphone.onset
        trial.lateness = microphone.lateness
        trial.frames_before_clip = microphone.frames_before_clip
        trial.failure = trial.failure or microphone.failure
        await ws.close()
    return trial


async def follow_trial(
    ws: aiohttp.ClientWebSocketResponse, microphone: Microphone, trial: Trial
) -> None:
    """Read the session's events and audio until the trial is decided."""
    started = time.monotonic()
    frames_before_speech = AGENT_AUDIO_BEFORE_SPEECH_MS // harness.FRAME_MS
    agent_frames = 0
    playbacks = 0
    while True:
        now = time.monotonic()
        agent_ready = playbacks > 0 and agent_frames >= frames_before_speech
        deadline = trial_deadline(trial, microphone, started, agent_ready)
        if now >= deadline:
            if trial.barge_in is None:
                trial.failure = "no barge_in" if agent_frames else "no agent audio"
            return
        try:
            message = await ws.receive(timeout=deadline - now)
        except TimeoutError:
            continue
        received = time.monotonic()
        if message.type == aiohttp.WSMsgType.BINARY:
            if playbacks != 1:
                continue  # a later turn's audio (the caller's words, answered)
            agent_frames += 1
            trial.agent_frame(received)
            if agent_frames == frames_before_speech:
                microphone.speak()
        elif message.type == aiohttp.WSMsgType.TEXT:
            event = json.loads(message.data)
            kind = event.get("type")
            if kind == "playback_started":
                playbacks += 1
            elif kind == "speech_started" and trial.speech_started is None:
                trial.speech_started = received
            elif kind == "barge_in" and trial.barge_in is None:
                trial.barge_in, trial.barge_in_event = received, event
            elif kind == "playback_completed" and trial.barge_in is None:
                trial.failure = "the reply finished without a barge_in"
                return
            elif kind == "error":
                trial.errors.append(f"{event.get('code')}: {event.get('message')}")
        else:
            trial.failure = f"socket {message.type.name} before the trial ended"
            return


def trial_deadline(
    trial: Trial, microphone: Microphone, started: float, agent_ready: bool
) -> float:
    """When to stop reading: the agent must start talking, then the barge-in must come, then
    the agent's audio must stay quiet a while."""
    limit = started + TRIAL_LIMIT_S
    if not agent_ready:
        return min(limit, started + WAIT_FOR_AGENT_S)
    if trial.barge_in is not None:
        return max(trial.last_agent_frame or 0.0, trial.barge_in) + QUIET_S
    if microphone.clip_end is not None:
        return min(limit, microphone.clip_end + BARGE_IN_GRACE_S)
    return limit


def first_voiced(clip: list[bytes], floor_dbfs: float) -> int:
    for index, frame in enumerate(clip):
        if harness.frame_dbfs(frame) > floor_dbfs:
            return index
    raise ValueError(f"no frame of the speech clip is louder than {floor_dbfs} dBFS")


async def measure(base_url: str, args: argparse.Namespace) -> list[Trial]:
    clip = harness.speech_frames(SPEECH_TEXT)
    voiced_index = first_voiced(clip, args.rms_floor_dbfs)
    trials = []
    async with aiohttp.ClientSession() as http:
        for number in range(args.warmup + args.trials):
            trial = await run_trial(http, base_url, clip, voiced_index, alignment=number)
            if number >= args.warmup:
                trials.append(trial)
            label = f"trial {number + 1 - args.warmup}" if number >= args.warmup else "warm-up"
            if args.per_trial:
                print(f"  {label}: {describe(trial)}")
            for problem in ([trial.failure] if trial.failure else []) + trial.errors:
                print(f"  {label}: {problem}")
    return trials


def figures(values: list[float]) -> list[str]:
    return [harness.ms(harness.percentile(values, p)) for p in (50, 90, 99, 100)]


def row(layer: str, trials: list[Trial]) -> list[object]:
    to_barge_in = [v for t in trials if (v := t.since_onset_ms(t.barge_in)) is not None]
    to_silence = [
        v
        for t in trials
        if t.barge_in is not None and (v := t.since_onset_ms(t.last_agent_frame)) is not None
    ]
    missing = sum(1 for t in trials if t.barge_in is None)
    late = sum(t.frames_after_barge_in for t in trials)
    late_trials = sum(1 for t in trials if t.frames_after_barge_in)
    return [
        layer,
        len(trials),
        missing,
        *figures(to_barge_in),
        *figures(to_silence),
        f"{late} in {late_trials}",
    ]


def describe(trial: Trial) -> str:
    """One trial's figures, for --per-trial."""
    # The server's VAD scores 512-sample frames counted from the stream's start; the clip's
    # position within one of them shifts when speech is confirmed.
    phase = None if trial.frames_before_clip is None else trial.frames_before_clip * 320 % 512
    return (
        f"(a) {harness.ms(trial.since_onset_ms(trial.barge_in))} ms, "
        f"(b) {harness.ms(trial.since_onset_ms(trial.last_agent_frame))} ms, "
        f"speech_started {harness.ms(trial.since_onset_ms(trial.speech_started))}"
        f" ms, clip starts {phase} samples into a VAD window, "
        f"frames after barge_in {trial.frames_after_barge_in}"
    )


def split_row(layer: str, trials: list[Trial]) -> list[object]:
    """Where (a) goes: the VAD confirming speech, then the server stopping the reply."""
    vad = [v for t in trials if (v := t.since_onset_ms(t.speech_started)) is not None]
    pipeline = [
        (t.barge_in - t.speech_started) * 1000
        for t in trials
        if t.barge_in is not None and t.speech_started is not None
    ]
    played = [t.barge_in_event.get("played_ms", 0) for t in trials if t.barge_in_event]
    lateness = [x * 1000 for t in trials for x in t.lateness]
    return [
        layer,
        *figures(vad),
        *figures(pipeline),
        harness.ms(harness.percentile(played, 50)),
        harness.ms(harness.percentile(lateness, 99)),
    ]


def by_position(layer: str, trials: list[Trial]) -> str:
    """Median onset -> speech_started for each start position of the clip."""
    parts = []
    for position in range(ALIGNMENTS):
        values = [
            v
            for t in trials
            if t.alignment == position and (v := t.since_onset_ms(t.speech_started)) is not None
        ]
        parts.append(f"{position}: {harness.ms(harness.percentile(values, 50))}")
    return f"{layer} VAD ms by clip position (median) " + " | ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_target_options(parser)
    parser.add_argument("--trials", type=int, default=20, help="measured trials per layer")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured trials first")
    parser.add_argument(
        "--rms-floor-dbfs",
        type=float,
        default=-40.0,
        help="a clip frame louder than this is voiced (onset)",
    )
    parser.add_argument("--per-trial", action="store_true", help="print every trial's figures")
    args = parser.parse_args()
    if args.trials < 1:
        parser.error("--trials must be at least 1")

    results: dict[str, list[Trial]] = {}
    for layer in harness.layers(args):
        with harness.server(layer, args) as url:
            print(f"barge-in: {args.trials} trials on {layer} ({url}) ...", flush=True)
            results[layer] = asyncio.run(measure(url, args))

    print()
    print("barge-in latency, ms from speech onset (client clock, loopback)")
    headers = ["layer", "trials", "missing"]
    headers += [f"(a) {p}" for p in ("p50", "p90", "p99", "max")]
    headers += [f"(b) {p}" for p in ("p50", "p90", "p99", "max")]
    headers += ["audio after barge_in"]
    harness.print_table(headers, [row(layer, trials) for layer, trials in results.items()])
    print()
    print("where (a) goes, ms: onset -> speech_started (VAD), speech_started -> barge_in (server)")
    headers = ["layer"]
    headers += [f"vad {p}" for p in ("p50", "p90", "p99", "max")]
    headers += [f"stop {p}" for p in ("p50", "p90", "p99", "max")]
    headers += ["played_ms p50", "mic lateness p99"]
    harness.print_table(headers, [split_row(layer, trials) for layer, trials in results.items()])
    print()
    print("(a) onset -> barge_in event received; (b) onset -> last agent audio frame received.")
    print(
        f"note: (a) includes the VAD's {VAD_MIN_SPEECH_MS} ms confirmation (VAD_MIN_SPEECH_MS) "
        "by design: speech must last that long before it counts."
    )
    print(
        "after (b) a client still plays the audio it holds: up to the server's playback lead "
        "(PLAYBACK_LEAD_MS, 80 ms by default)."
    )
    print(
        f"the clip's start rotates through {ALIGNMENTS} positions against the VAD's 32 ms "
        "windows; its first word is voiced for about VAD_MIN_SPEECH_MS, so at some positions "
        "it confirms speech, at others the next words do, ~0.3 s later."
    )
    for layer, trials in results.items():
        print(by_position(layer, trials))
    print(
        "missing: trials without a barge_in; audio after barge_in: frames (in trials); "
        "mic lateness: how late the client sent its 20 ms frames."
    )
    print()
    print("summary: " + "; ".join(summary(layer, trials) for layer, trials in results.items()))


def summary(layer: str, trials: list[Trial]) -> str:
    values = row(layer, trials)
    return (
        f"{layer} barge_in p50 {values[3]} / p99 {values[5]} ms, silence p50 {values[7]} / "
        f"p99 {values[9]} ms, missing {values[2]}/{values[1]}, audio after barge_in {values[11]}"
    )


if __name__ == "__main__":
    main()
