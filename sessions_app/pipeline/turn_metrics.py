"""Where an agent turn's time went: the moments of its stages and of its barge-ins.

A plain object the pipeline marks as each stage happens. Moments are ms on one time base, the
session's: the monotonic clock since the conversation opened. A moment of the caller's audio
(their last voiced frame, a barge-in's onset) is placed by the stream's sample count, as so many
ms of audio before the moment the server had heard the stream up to, so no client clock (nor
any second server clock) is ever compared with this one. Durations are derived from the moments
when the turn closes, stored with the turn, sent as `turn_metrics`, and fed to Prometheus.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from sessions_app.pipeline.turn_taking import EndOfTurn
from voiceproject.metrics import BARGE_IN_STOP_SECONDS, TURN_STAGE_SECONDS

# A turn's moments, in the order they happen (a turn has those its path goes through: a typed
# turn has no audio ones, a greeting no caller ones). `reply_done` (the whole reply generated)
# comes after `first_token`, anywhere relative to the audio moments.
MOMENTS = (
    "last_voiced",  # the caller's last voiced frame
    "end_of_turn",  # turn-taking decided the caller had finished
    "transcript_final",  # the caller's words were stored and shown
    "first_token",  # the agent's first piece of reply
    "first_audio",  # the first sentence was synthesised
    "first_frame",  # the first agent audio frame was handed to the send path
    "playback_end",  # the last frame had played
)
REPLY_DONE = "reply_done"

# Durations, each between two moments: (stage, from, to).
STAGES = (
    ("end_of_turn", "last_voiced", "end_of_turn"),  # the end-of-turn wait
    ("recognition", "end_of_turn", "transcript_final"),
    ("agent", "transcript_final", "first_token"),
    ("generation", "first_token", REPLY_DONE),
    ("synthesis", "first_token", "first_audio"),
    ("send", "first_audio", "first_frame"),
    ("speaking", "first_frame", "playback_end"),
)
# A barge-in's moments: onset, pause, then confirm (the reply is cut) or resume; stop.
BARGE_IN_STAGES = (
    ("pause", "onset", "pause"),
    ("decision", "pause", "confirm"),
    ("decision", "pause", "resume"),
    ("stop", "confirm", "stop"),
)
BargeInOutcome = Literal["confirmed", "resumed", "backchannel"]


class SessionClock:
    """The session's time base: ms of the monotonic clock since the conversation opened."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._origin = monotonic()

    def now_ms(self) -> float:
        return (self._monotonic() - self._origin) * 1000

    def audio_moment(self, offset_ms: float, heard_to_ms: float) -> float:
        """When the caller's audio at stream `offset_ms` was spoken, given that the stream has
        been heard up to `heard_to_ms` now: the sample count between them, back from now."""
        return self.now_ms() - max(0.0, heard_to_ms - offset_ms)


def _durations(marks: dict[str, int], stages: tuple[tuple[str, str, str], ...]) -> dict[str, int]:
    return {
        stage: marks[end] - marks[start]
        for stage, start, end in stages
        if start in marks and end in marks
    }


@dataclass
class BargeIn:
    """The caller spoke over the reply: when it began, paused, was confirmed or let go, stopped."""

    marks: dict[str, int] = field(default_factory=dict)
    outcome: BargeInOutcome | None = None
    source: str | None = None

    @property
    def open(self) -> bool:
        return self.outcome is None

    def as_json(self) -> dict:
        stages = _durations(self.marks, BARGE_IN_STAGES)
        # From onset to the moment no more of the reply left: the pause, else the stop.
        silenced = self.marks.get("pause", self.marks.get("stop"))
        if silenced is not None and "onset" in self.marks:
            stages["silenced"] = silenced - self.marks["onset"]
        return {
            "outcome": self.outcome,
            "source": self.source,
            "marks": dict(self.marks),
            "stages": stages,
        }


class TurnMetrics:
    """One agent turn's moments (each kept the first time it is marked) and barge-ins."""

    def __init__(self, clock: SessionClock) -> None:
        self._clock = clock
        self._marks: dict[str, int] = {}
        self._end: EndOfTurn | None = None
        self._barge_ins: list[BargeIn] = []

    def mark(self, moment: str, at_ms: float | None = None) -> None:
        if moment not in self._marks:
            self._marks[moment] = round(self._clock.now_ms() if at_ms is None else at_ms)

    def caller_finished(self, end: EndOfTurn) -> None:
        """Turn-taking decided now: the last voiced frame was `end.silence_ms` of audio ago."""
        now = self._clock.now_ms()
        self._end = end
        self.mark("last_voiced", now - end.silence_ms)
        self.mark("end_of_turn", now)

    # --- barge-ins ------------------------------------------------------------------------

    def barge_in_paused(self, onset_ms: float | None) -> None:
        """The reply was paused for caller audio that began at `onset_ms` (session time)."""
        now = self._clock.now_ms()
        barge_in = BargeIn()
        barge_in.marks["onset"] = round(min(now, onset_ms if onset_ms is not None else now))
        barge_in.marks["pause"] = round(now)
        self._barge_ins.append(barge_in)

    def barge_in_resumed(self, outcome: BargeInOutcome) -> None:
        """The pause was a false alarm or an acknowledgement: the reply goes on."""
        barge_in = self._open_barge_in()
        if barge_in is not None:
            barge_in.marks["resume"] = round(self._clock.now_ms())
            barge_in.outcome = outcome

    def barge_in_confirmed(self, confirmed_ms: float, source: str) -> None:
        """The reply was cut at `confirmed_ms` and has stopped now. A cut with no pause before
        it (typed text, a key, the operator) had its onset when it was confirmed."""
        barge_in = self._open_barge_in()
        if barge_in is None:
            barge_in = BargeIn(marks={"onset": round(confirmed_ms)})
            self._barge_ins.append(barge_in)
        barge_in.marks["confirm"] = round(confirmed_ms)
        barge_in.marks["stop"] = round(self._clock.now_ms())
        barge_in.outcome, barge_in.source = "confirmed", source

    def _open_barge_in(self) -> BargeIn | None:
        last = self._barge_ins[-1] if self._barge_ins else None
        return last if last is not None and last.open else None

    # --- the record -----------------------------------------------------------------------

    def as_json(self, cut_by: str = "") -> dict:
        """The stored and sent form (contracts/turn-metrics.schema.json)."""
        stages = _durations(self._marks, STAGES)
        response_from = next(
            (self._marks[m] for m in ("last_voiced", "transcript_final") if m in self._marks), None
        )
        response_to = self._marks.get("first_frame", self._marks.get("first_token"))
        if response_from is not None and response_to is not None:
            stages["response"] = response_to - response_from
        return {
            "cut_by": cut_by,
            "end_of_turn": self._end.as_json() if self._end is not None else None,
            "marks": dict(self._marks),
            "stages": stages,
            "barge_ins": [barge_in.as_json() for barge_in in self._barge_ins],
        }


def observe(record: dict) -> None:
    """Feed a closed turn's durations to voice_turn_stage_seconds, and how soon each barge-in
    silenced the reply to voice_barge_in_stop_seconds."""
    for stage, ms in record["stages"].items():
        TURN_STAGE_SECONDS.labels(stage=stage).observe(ms / 1000)
    for barge_in in record["barge_ins"]:
        if "silenced" in barge_in["stages"]:
            BARGE_IN_STOP_SECONDS.observe(barge_in["stages"]["silenced"] / 1000)


def summarize(records: list[dict]) -> dict[str, dict[str, int]]:
    """A session's stages over its turns: {stage: {"p50", "max", "turns"}} (p50 is the lower
    median, a duration some turn really took), in STAGES order, `response` last."""
    by_stage: dict[str, list[int]] = {}
    for record in records:
        for stage, ms in record["stages"].items():
            by_stage.setdefault(stage, []).append(ms)
    order = [stage for stage, _, _ in STAGES] + ["response"]
    return {
        stage: {
            "p50": sorted(by_stage[stage])[(len(by_stage[stage]) - 1) // 2],
            "max": max(by_stage[stage]),
            "turns": len(by_stage[stage]),
        }
        for stage in order
        if stage in by_stage
    }


def describe(record: dict) -> str:
    """One line for an operator: each stage's ms, then each barge-in's."""
    stages = record["stages"]
    parts = [f"{stage} {stages[stage]}" for stage, _, _ in STAGES if stage in stages]
    if "response" in stages:
        parts.append(f"response {stages['response']}")
    line = " · ".join(parts) + " ms" if parts else "—"
    for barge_in in record["barge_ins"]:
        timings = ", ".join(f"{stage} {ms}" for stage, ms in barge_in["stages"].items())
        line += f"; barge-in {barge_in['outcome'] or 'open'}: {timings} ms"
    return line
