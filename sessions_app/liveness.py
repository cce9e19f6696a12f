"""Which process holds each live session, and the sweep that ends the sessions nobody holds.

A session goes live once: its first socket claims it (`claim`), stamping this process's id
and a heartbeat; a second socket finds it claimed. While the process runs, its sweeper task
refreshes the heartbeat of the sessions it holds every `LIVENESS_INTERVAL_S`, and ends what
no one will ever end otherwise: sessions whose process stopped beating for
`LIVENESS_MISSED_BEATS` intervals (`server_lost`: it died, or lost its database), and
sessions whose token expired before any socket opened them (`never_connected`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from sessions_app.acs.calls import hang_up_session
from sessions_app.control import LAYER_OUTAGES, ask_to_end
from sessions_app.models import Session
from sessions_app.process_task import ProcessTask
from sessions_app.store import durably, end_session

logger = logging.getLogger(__name__)

# Unique per process run: a restarted process on the same pid does not inherit old sessions.
PROCESS_ID = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
NEVER_CONNECTED = "never_connected"
SERVER_LOST = "server_lost"


async def claim(session_id: uuid.UUID) -> bool:
    """Take an active session live in this process; False if a socket already took it."""
    now = timezone.now()
    claimed = await durably(
        "the session's connection",
        lambda: Session.objects.filter(
            pk=session_id, status=Session.Status.ACTIVE, connected_at__isnull=True
        ).aupdate(connected_at=now, process_id=PROCESS_ID, heartbeat_at=now),
    )
    return claimed == 1


async def beat(session_ids: Iterable[uuid.UUID]) -> None:
    """Refresh this process's heartbeat for the live sessions it holds."""
    ids = list(session_ids)
    if ids:
        await Session.objects.filter(pk__in=ids, status=Session.Status.ACTIVE).aupdate(
            heartbeat_at=timezone.now(), process_id=PROCESS_ID
        )


async def sweep(now: datetime | None = None) -> int:
    """End the sessions of dead processes and those never connected; return how many."""
    now = now or timezone.now()
    lost_before = now - timedelta(
        seconds=settings.LIVENESS_INTERVAL_S * settings.LIVENESS_MISSED_BEATS
    )
    active = Session.objects.filter(status=Session.Status.ACTIVE)
    lost = active.filter(connected_at__isnull=False, heartbeat_at__lt=lost_before)
    never = active.filter(
        connected_at__isnull=True,
        created_at__lt=now - timedelta(seconds=settings.SESSION_TOKEN_MAX_AGE_S),
    )
    ended = 0
    for sessions, reason in ((lost, SERVER_LOST), (never, NEVER_CONNECTED)):
        async for session_id, channel in sessions.values_list("pk", "channel"):
            if await end_session(session_id, reason):
                ended += 1
                await _stop_leftovers(session_id, channel, reason)
    return ended


async def _stop_leftovers(session_id: uuid.UUID, channel: str, reason: str) -> None:
    """Whatever may still run for a swept session: a stuck consumer, a ringing phone call."""
    logger.warning("session %s swept: %s", session_id, reason)
    with contextlib.suppress(*LAYER_OUTAGES):
        await ask_to_end(session_id, reason)
    if channel == Session.Channel.ACS:
        await hang_up_session(session_id)


class Sweeper(ProcessTask):
    """This process's periodic heartbeat and sweep; one task, owned here, cancelled by `stop`."""

    def __init__(self, live_session_ids: Callable[[], Iterable[uuid.UUID]]) -> None:
        super().__init__()
        self._live_session_ids = live_session_ids

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(settings.LIVENESS_INTERVAL_S)
            try:
                await beat(self._live_session_ids())
                await sweep()
            except Exception as exc:  # a database outage: the next round tries again
                logger.warning("liveness sweep failed: %s", type(exc).__name__)
