"""Durable writes for one live session: utterances with gapless per-session seq, and counters."""

from __future__ import annotations

import uuid

from django.db.models import F, Max
from django.utils import timezone

from sessions_app.models import Session, Utterance


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
        return await Utterance.objects.acreate(
            session=self.session, role=role, seq=seq, text=text, **fields
        )

    async def count(self, counter: str) -> None:
        """Bump `turn_count`, `barge_in_count` or `error_count` without a read."""
        await Session.objects.filter(pk=self.session.pk).aupdate(**{counter: F(counter) + 1})

    async def set_sample_rate(self, rate: int) -> None:
        self.session.sample_rate = rate
        await Session.objects.filter(pk=self.session.pk).aupdate(sample_rate=rate)


async def end_session(session_id: uuid.UUID, reason: str) -> bool:
    """Mark a session ended; False when it had already ended (ending twice changes nothing)."""
    changed = await Session.objects.filter(pk=session_id, status=Session.Status.ACTIVE).aupdate(
        status=Session.Status.ENDED, end_reason=reason, ended_at=timezone.now()
    )
    return changed > 0
