"""The per-address token bucket behind SESSION_CREATE_RATE."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from sessions_app import rate_limit
from sessions_app.rate_limit import AddressRateLimit, Rate


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("30/min", Rate(30, 60)),
        ("5/s", Rate(5, 1)),
        ("100/hour", Rate(100, 3600)),
        ("7", Rate(7, 60)),
        ("", None),
        ("0/min", None),
    ],
)
def test_rates_parse(text, rate):
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["many/min", "3/fortnight", "/min"])
def test_a_bad_rate_is_a_configuration_error(text):
    with pytest.raises(ImproperlyConfigured, match="COUNT/PERIOD"):
        Rate.parse(text)


@pytest.fixture
def clock(monkeypatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(rate_limit.time, "monotonic", lambda: now[0])
    return now


def test_a_burst_then_one_token_per_interval_per_address(settings, clock):
    settings.SESSION_CREATE_RATE = "2/min"
    limit = AddressRateLimit("SESSION_CREATE_RATE")
    assert limit.retry_after("10.0.0.1") is None
    assert limit.retry_after("10.0.0.1") is None
    assert limit.retry_after("10.0.0.1") == pytest.approx(30)
    assert limit.retry_after("10.0.0.2") is None, "another address has its own bucket"

    clock[0] += 29
    assert limit.retry_after("10.0.0.1") == pytest.approx(1)  # refused tries cost nothing
    clock[0] += 1
    assert limit.retry_after("10.0.0.1") is None
    assert limit.retry_after("10.0.0.1") is not None


def test_the_number_of_tracked_addresses_is_bounded(settings, clock, monkeypatch):
    settings.SESSION_CREATE_RATE = "1/min"
    monkeypatch.setattr(rate_limit, "MAX_TRACKED_CLIENTS", 3)
    limit = AddressRateLimit("SESSION_CREATE_RATE")
    for n in range(10):
        limit.retry_after(f"10.0.0.{n}")
    assert len(limit._buckets) == 3
    assert limit.retry_after("10.0.0.9") is not None, "the most recent are remembered"
