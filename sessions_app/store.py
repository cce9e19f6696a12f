"""Durable writes for one live session: utterances with a per-session seq, and counters.

Every write rides out a brief database outage (a restart, a dropped connection): the broken
connection is discarded and the write retried for up to STORAGE_RETRY_DEADLINE_S. Past that,
StorageFailed names what was not stored, so the caller can be told; nothing is lost silently.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from channels.db import aclose_old_connections
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import F, Max
from django.utils import timezone
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from agents_app.retry import replaying
from sessions_app.models import Session, Utterance

logger = logging.getLogger(__name__)

T = TypeVar("T")
DATABASE_OUTAGES = (OperationalError, InterfaceError)


class StorageFailed(Exception):
    """A write did not reach the database in time; `what` says what was not stored."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} was not stored: the database is unavailable")
        self.what = what


async def durably(what: str, write: Callable[[], Awaitable[T]]) -> T:
    """Run a database write, retrying through a brief outage on a fresh connection. The first
    attempt is made without tenacity (see agents_app.retry.replaying)."""
    started = time.monotonic()
    try:
        return await write()
    except DATABASE_OUTAGES as exc:
        attempt = replaying(exc, write)
    try:
        async for retry in AsyncRetrying(
            retry=retry_if_exception_type(DATABASE_OUTAGES),
            wait=wait_exponential(multiplier=0.05, max=1.0),
            stop=stop_after_delay(settings.STORAGE_RETRY_DEADLINE_S - (time.monotonic() - started)),
            reraise=True,
        ):
            with retry:
                try:
                    result = await attempt()
                except DATABASE_OUTAGES:
                    await aclose_old_connections()  # the next attempt reconnects
                    raise
    except DATABASE_OUTAGES as exc:
        logger.error("%s not stored: %s", what, type(exc).__name__)
        raise StorageFailed(what) from exc
    return result


class SessionStore:
    """The only writer of a live session's rows; one per connected session."""

    def __init__(self, session: Session, next_seq: int) -> None:
        self.session = session
        self._next_seq = next_seq

    @classmethod
    async def open(cls, session: Session) -> SessionStore:
        last = await session.utterances.aaggregate(last=Max("seq"))
        return cls(session, (last["last"] or 0) + 1)

    async def add_utterance(self, role: str, text: str, **fields: object) -> Utterance:
        """Store one utterance (text already redacted) under the next seq of the session."""
        # Reserve the seq before awaiting, so two writes in flight never share one.
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        try:
            utterance = await durably(
                f"{role} utterance #{seq}",
                lambda: Utterance.objects.acreate(
                    session=self.session, role=role, seq=seq, text=text, **fields
                ),
            )
        except StorageFailed:
            if self._next_seq == seq + 1:
                self._next_seq = seq  # no gap for a write that never happened
            raise
        if role == Utterance.Role.AGENT:
            await self._count_turn(interrupted=utterance.interrupted)
        return utterance

    async def extend_utterance(self, utterance: Utterance, text: str, end_ms: int | None) -> None:
        """The caller went on with an utterance already stored: it now reads `text`."""
        utterance.text, utterance.end_ms = text, end_ms
        await durably(
            f"user utterance #{utterance.seq}",
            lambda: Utterance.objects.filter(pk=utterance.pk).aupdate(text=text, end_ms=end_ms),
        )

    async def _count_turn(self, *, interrupted: bool) -> None:
        """One more agent turn (a reply stored), and one more cut short if it was."""
        counters = ["turn_count", "interrupted_turn_count"] if interrupted else ["turn_count"]
        await self.count(*counters)

    async def count(self, *counters: str) -> None:
        """Bump session counters (`barge_in_count`, `error_count`; turns are counted as their
        replies are stored) in one write, without a read (best effort)."""
        # A counter is a statistic; the rows it counts are what must not be lost.
        with contextlib.suppress(StorageFailed):
            await durably(
                " and ".join(counters),
                lambda: Session.objects.filter(pk=self.session.pk).aupdate(
                    **{counter: F(counter) + 1 for counter in counters}
                ),
            )

    async def set_sample_rate(self, rate: int) -> None:
        self.session.sample_rate = rate
        await durably(
            "the sample rate",
            lambda: Session.objects.filter(pk=self.session.pk).aupdate(sample_rate=rate),
        )

    async def set_recording(self, name: str) -> None:
        self.session.recording.name = name
        await durably(
            "the recording",
            lambda: Session.objects.filter(pk=self.session.pk).aupdate(recording=name),
        )


async def end_session(
    session_id: uuid.UUID, reason: str, status: str = Session.Status.ENDED
) -> bool:
    """Mark a session ended (or failed); False when it had already ended: ending twice
    changes nothing."""
    changed = await durably(
        "the end of the session",
        lambda: Session.objects.filter(pk=session_id, status=Session.Status.ACTIVE).aupdate(
            status=status, end_reason=reason, ended_at=timezone.now()
        ),
    )
    return changed > 0
