"""The real-time budget for caller audio, on a clock the test moves."""

from __future__ import annotations

from sessions_app.pipeline.audio_budget import AudioBudget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_audio_at_real_time_is_always_admitted():
    clock = Clock()
    budget = AudioBudget(2000, clock=clock)
    for _ in range(1000):  # 20 s of 20 ms frames, each arriving on time
        assert budget.admit(20)
        clock.now += 0.02
    assert budget.dropped_ms == 0


def test_audio_beyond_the_budget_is_dropped_until_the_clock_catches_up():
    clock = Clock()
    budget = AudioBudget(2000, clock=clock)
    admitted = sum(budget.admit(20) for _ in range(500))  # 10 s at once
    assert admitted == 100  # the budget: 2 s
    assert budget.dropped_ms == 400 * 20
    clock.now += 1.0
    assert sum(budget.admit(20) for _ in range(100)) == 50  # one more second of room


def test_the_caller_is_warned_at_most_once_per_interval():
    clock = Clock()
    budget = AudioBudget(0, warn_every_s=1.0, clock=clock)
    warnings = 0
    for _ in range(200):  # 2 s of a flood, frames every 10 ms
        warnings += budget.should_warn()
        clock.now += 0.01
    assert warnings == 2
