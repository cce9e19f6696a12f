"""TurnMetrics with a fake clock: moments land where the stage happened, in order, and the
durations between them are what the clock says; barge-ins keep their onset, pause, decision
and stop; a closed turn feeds the Prometheus histograms."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from sessions_app.contracts import validator
from sessions_app.pipeline.turn_metrics import MOMENTS, SessionClock, TurnMetrics, observe
from sessions_app.pipeline.turn_taking import EndOfTurn


class FakeClock:
    """A monotonic clock that moves only when told to (seconds, like time.monotonic)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += ms / 1000


def assert_in_order(metrics: dict[str, Any]) -> None:
    """The turn's moments come in stage order, every duration is non-negative, and the record
    is what the contract says; so are its barge-ins'. Used by the pipeline's tests too."""
    validator("turn-metrics").validate(metrics)
    marks = metrics["marks"]
    present = [marks[moment] for moment in MOMENTS if moment in marks]
    assert present == sorted(present), marks
    if "reply_done" in marks:
        assert marks["reply_done"] >= marks["first_token"], marks
    assert all(ms >= 0 for ms in metrics["stages"].values()), metrics["stages"]
    for barge_in in metrics["barge_ins"]:
        moments = [barge_in["marks"][m] for m in ("onset", "pause") if m in barge_in["marks"]]
        ends = [barge_in["marks"][m] for m in ("confirm", "resume") if m in barge_in["marks"]]
        assert moments == sorted(moments) and all(end >= moments[-1] for end in ends), barge_in
        assert all(ms >= 0 for ms in barge_in["stages"].values()), barge_in


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def session(clock: FakeClock) -> SessionClock:
    return SessionClock(clock)


@pytest.fixture
def metrics(session: SessionClock) -> TurnMetrics:
    return TurnMetrics(session)


def test_the_session_clock_counts_from_its_start_and_places_audio_by_samples(clock):
    session = SessionClock(clock)
    clock.advance(2500)
    assert session.now_ms() == pytest.approx(2500)
    # Heard up to 4000 ms of stream now: audio at 3700 ms was spoken 300 ms ago.
    assert session.audio_moment(3700, heard_to_ms=4000) == pytest.approx(2200)
    # Never in the future, whatever the offsets say.
    assert session.audio_moment(4100, heard_to_ms=4000) == pytest.approx(2500)


def test_a_typed_turn_has_no_audio_stages(clock, metrics):
    clock.advance(1000)
    metrics.mark("transcript_final")
    clock.advance(120)
    metrics.mark("first_token")
    clock.advance(30)
    metrics.mark("reply_done")

    record = metrics.as_json()

    assert_in_order(record)
    assert record["marks"] == {"transcript_final": 1000, "first_token": 1120, "reply_done": 1150}
    assert record["stages"] == {"agent": 120, "generation": 30, "response": 120}
    assert (record["end_of_turn"], record["cut_by"], record["barge_ins"]) == (None, "", [])


def test_a_spoken_turn_is_timed_from_the_last_voiced_frame_to_the_end_of_playback(clock, metrics):
    clock.advance(5000)
    metrics.caller_finished(EndOfTurn("model", silence_ms=240, probability=0.93))
    for moment, after_ms in [
        ("transcript_final", 180),
        ("first_token", 90),
        ("reply_done", 20),
        ("first_audio", 40),
        ("first_frame", 5),
        ("playback_end", 3000),
    ]:
        clock.advance(after_ms)
        metrics.mark(moment)

    record = metrics.as_json()

    assert_in_order(record)
    assert record["marks"]["last_voiced"] == 4760
    assert record["end_of_turn"] == {"reason": "model", "silence_ms": 240, "probability": 0.93}
    assert record["stages"] == {
        "end_of_turn": 240,
        "recognition": 180,
        "agent": 90,
        "generation": 20,
        "synthesis": 60,
        "send": 5,
        "speaking": 3000,
        "response": 240 + 180 + 90 + 60 + 5,
    }


def test_a_moment_is_kept_the_first_time_it_is_marked(clock, metrics):
    metrics.mark("first_frame")
    clock.advance(500)
    metrics.mark("first_frame")  # every later frame marks it again
    assert metrics.as_json()["marks"] == {"first_frame": 0}


def test_a_greeting_has_no_caller_stages_nor_response(clock, metrics):
    metrics.mark("first_token")
    clock.advance(50)
    metrics.mark("first_audio")
    record = metrics.as_json()
    assert_in_order(record)
    assert record["stages"] == {"synthesis": 50}


def test_a_confirmed_barge_in_keeps_onset_pause_confirm_and_stop(clock, session, metrics):
    metrics.mark("first_frame")
    clock.advance(2000)
    metrics.barge_in_paused(onset_ms=1960)  # the caller's audio began 40 ms before the pause
    clock.advance(700)
    confirmed = session.now_ms()
    clock.advance(15)
    metrics.barge_in_confirmed(confirmed, "speech")

    record = metrics.as_json("speech")

    assert_in_order(record)
    assert record["cut_by"] == "speech"
    assert record["barge_ins"] == [
        {
            "outcome": "confirmed",
            "source": "speech",
            "marks": {"onset": 1960, "pause": 2000, "confirm": 2700, "stop": 2715},
            "stages": {"pause": 40, "decision": 700, "stop": 15, "silenced": 40},
        }
    ]


@pytest.mark.parametrize("outcome", ["resumed", "backchannel"])
def test_a_false_alarm_or_a_backchannel_resumes_and_a_later_barge_in_is_its_own(
    clock, metrics, outcome
):
    clock.advance(1000)
    metrics.barge_in_paused(onset_ms=980)
    clock.advance(400)
    metrics.barge_in_resumed(outcome)
    clock.advance(1000)
    metrics.barge_in_paused(onset_ms=2390)
    clock.advance(300)
    metrics.barge_in_resumed("resumed")

    record = metrics.as_json()

    assert_in_order(record)
    first, second = record["barge_ins"]
    assert first == {
        "outcome": outcome,
        "source": None,
        "marks": {"onset": 980, "pause": 1000, "resume": 1400},
        "stages": {"pause": 20, "decision": 400, "silenced": 20},
    }
    assert second["marks"] == {"onset": 2390, "pause": 2400, "resume": 2700}


def test_a_cut_with_no_pause_before_it_has_its_onset_when_it_was_confirmed(clock, metrics):
    clock.advance(800)
    confirmed = 800.0
    clock.advance(3)
    metrics.barge_in_confirmed(confirmed, "text")

    (barge_in,) = metrics.as_json("text")["barge_ins"]

    assert barge_in["marks"] == {"onset": 800, "confirm": 800, "stop": 803}
    assert barge_in["stages"] == {"stop": 3, "silenced": 3}


def test_a_resume_with_no_barge_in_open_records_nothing(metrics):
    metrics.barge_in_resumed("resumed")
    assert metrics.as_json()["barge_ins"] == []


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_closed_turn_feeds_the_stage_and_barge_in_histograms(clock, metrics):
    before_agent = sample("voice_turn_stage_seconds_count", stage="agent")
    before_sum = sample("voice_turn_stage_seconds_sum", stage="agent")
    before_stop = sample("voice_barge_in_stop_seconds_count")
    metrics.mark("transcript_final")
    clock.advance(250)
    metrics.mark("first_token")
    clock.advance(100)
    metrics.barge_in_paused(onset_ms=330)

    observe(metrics.as_json())

    assert sample("voice_turn_stage_seconds_count", stage="agent") == before_agent + 1
    assert sample("voice_turn_stage_seconds_sum", stage="agent") == pytest.approx(before_sum + 0.25)
    assert sample("voice_barge_in_stop_seconds_count") == before_stop + 1
