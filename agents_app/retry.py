"""One retry policy for every provider call, built on tenacity.

Exponential backoff with full jitter, bounded both by attempts and by a total deadline, and
only for failures the taxonomy marks retryable. SDK-internal retries are switched off where
this applies (e.g. `max_retries=0` on the OpenAI client) so attempts are not multiplied.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from django.conf import settings
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from agents_app.errors import ProviderError

logger = logging.getLogger(__name__)

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    logger.warning(
        "provider call failed (attempt %d): %s; retrying",
        state.attempt_number,
        type(exc).__name__,
    )


def retrying(*, attempts: int | None = None, deadline_s: float | None = None) -> AsyncRetrying:
    """The policy as a tenacity controller, sized from settings unless told otherwise."""
    return AsyncRetrying(
        retry=retry_if_exception(is_retryable),
        wait=wait_random_exponential(
            multiplier=settings.PROVIDER_RETRY_BASE_S, max=settings.PROVIDER_RETRY_MAX_WAIT_S
        ),
        stop=stop_after_attempt(settings.PROVIDER_RETRY_ATTEMPTS if attempts is None else attempts)
        | stop_after_delay(
            settings.PROVIDER_RETRY_DEADLINE_S if deadline_s is None else deadline_s
        ),
        before_sleep=_log_retry,
        reraise=True,
    )


def replaying(failure: BaseException, fn: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
    """Attempts for a tenacity loop entered after a first attempt made without tenacity (its
    controller and per-call state are reference cycles, freed only by the cyclic collector,
    whose collections pause every session, and nearly every call succeeds at once): the first
    raises that attempt's `failure`, so waits, stops and logs are as if tenacity had made it;
    the rest await `fn()`."""
    pending: BaseException | None = failure

    # tenacity awaits only functions it sees are `async def`; a lambda returning a coroutine
    # would come back unawaited, so every attempt goes through this coroutine function.
    async def attempt() -> T:
        nonlocal pending
        if pending is not None:
            replayed, pending = pending, None
            raise replayed
        return await fn()

    return attempt


async def call_with_retry(
    fn: Callable[[], Awaitable[T]], *, attempts: int | None = None, deadline_s: float | None = None
) -> T:
    """Await `fn()` under the retry policy; the last failure is re-raised unchanged. The first
    attempt is made without tenacity (see `replaying`); the deadline counts from it."""
    started = time.monotonic()
    try:
        return await fn()
    except BaseException as exc:
        if not is_retryable(exc):
            raise
        attempt = replaying(exc, fn)
    deadline_s = settings.PROVIDER_RETRY_DEADLINE_S if deadline_s is None else deadline_s
    elapsed_s = time.monotonic() - started
    return await retrying(attempts=attempts, deadline_s=deadline_s - elapsed_s)(attempt)
