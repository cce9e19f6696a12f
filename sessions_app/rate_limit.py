"""A small in-process rate limit per client address: token buckets, bounded in number.

One process's count, not the cluster's: it stops one client hammering one server, cheaply.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PERIODS_S = {"s": 1, "sec": 1, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
MAX_TRACKED_CLIENTS = 10_000


@dataclass(frozen=True)
class Rate:
    """`count` per `period_s` seconds, in bursts of up to `count`."""

    count: int
    period_s: float

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """ "30/min" → 30 a minute; blank or "0/…" → no limit."""
        if not text.strip():
            return None
        count, _, period = text.strip().partition("/")
        try:
            rate = cls(int(count), PERIODS_S[period.strip().lower() or "min"])
        except (ValueError, KeyError) as exc:
            raise ImproperlyConfigured(
                f"rate {text!r}: expected COUNT/PERIOD, PERIOD one of s, min, hour"
            ) from exc
        return rate if rate.count > 0 else None


@dataclass
class _Bucket:
    tokens: float
    updated: float


class AddressRateLimit:
    """Token buckets keyed by client address; the least recently seen are forgotten first."""

    def __init__(self, setting: str) -> None:
        self.setting = setting
        self._rate: Rate | None = None
        self._rate_text: str | None = None
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def retry_after(self, address: str) -> float | None:
        """Take one token for `address`: None if it may go ahead, else seconds to wait."""
        rate = self._current_rate()
        if rate is None:
            return None
        now = time.monotonic()
        bucket = self._buckets.pop(address, None) or _Bucket(rate.count, now)
        per_second = rate.count / rate.period_s
        bucket.tokens = min(rate.count, bucket.tokens + (now - bucket.updated) * per_second)
        bucket.updated = now
        self._buckets[address] = bucket
        if len(self._buckets) > MAX_TRACKED_CLIENTS:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / per_second

    def reset(self) -> None:
        self._buckets.clear()

    def _current_rate(self) -> Rate | None:
        text = getattr(settings, self.setting)
        if text != self._rate_text:  # settings changed (tests do): start afresh
            self._rate, self._rate_text = Rate.parse(text), text
            self._buckets.clear()
        return self._rate


session_creation = AddressRateLimit("SESSION_CREATE_RATE")
