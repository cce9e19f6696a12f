"""This process's live sessions: counted (MAX_LIVE_SESSIONS), kept beating (liveness.py),
and ended on SIGTERM before the process exits.

daphne on Twisted's asyncio reactor installs no SIGTERM handler, so the process would die
mid-sentence with its sessions left active. This ends each live session with reason
`server_shutdown` (stored, told to the caller, close code 4001) within a grace period, then
exits as SIGTERM would have.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import uuid
from typing import Protocol

from django.conf import settings

from agents_app.strategies.openai import close_shared_clients
from sessions_app.liveness import Sweeper
from sessions_app.loop_lag import lag_monitor
from sessions_app.pipeline.playback_clock import playback_clock
from voiceproject.metrics import LIVE_SESSIONS

logger = logging.getLogger(__name__)

GRACE_S = 5.0
CLOSE_SHUTDOWN = 4001  # daphne cannot send 1001 (going away)
# Time for the sessions' close frames to leave before the process goes.
FLUSH_S = 0.2


class LiveSession(Protocol):
    session_id: uuid.UUID

    async def end_session(self, reason: str, close_code: int = 1000) -> bool: ...


_live: set[LiveSession] = set()
_handled_loops: set[asyncio.AbstractEventLoop] = set()
_shutting_down: list[asyncio.Task[None]] = []


def live_session_ids() -> list[uuid.UUID]:
    return [session.session_id for session in _live]


def at_capacity() -> bool:
    """Whether this process already holds MAX_LIVE_SESSIONS: a new one would degrade all."""
    return len(_live) >= settings.MAX_LIVE_SESSIONS


sweeper = Sweeper(live_session_ids)
LIVE_SESSIONS.set_function(lambda: len(_live))


def track(session: LiveSession) -> None:
    """A session went live in this process: keep it beating, end it on SIGTERM."""
    _install_handler()
    _live.add(session)
    sweeper.ensure_running()
    lag_monitor.ensure_running()


def untrack(session: LiveSession) -> None:
    _live.discard(session)


def _install_handler() -> None:
    loop = asyncio.get_running_loop()
    if not settings.GRACEFUL_SHUTDOWN or loop in _handled_loops:
        return
    try:
        loop.add_signal_handler(
            signal.SIGTERM, lambda: _shutting_down.append(loop.create_task(_shut_down()))
        )
    except (NotImplementedError, RuntimeError, ValueError):
        return  # not the main thread, or no signals here: the server's own handling applies
    _handled_loops.add(loop)


async def _shut_down() -> None:
    live = list(_live)
    logger.info("SIGTERM: ending %d live session(s)", len(live))
    if live:
        endings = [
            asyncio.ensure_future(s.end_session("server_shutdown", CLOSE_SHUTDOWN)) for s in live
        ]
        await asyncio.wait(endings, timeout=GRACE_S)
        await asyncio.sleep(FLUSH_S)
    sweeper.stop()
    lag_monitor.stop()
    playback_clock.stop()
    try:
        await close_shared_clients()
    except Exception:  # whatever a client does, the process still exits below
        logger.exception("SIGTERM: the OpenAI clients did not close")
    asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)  # the default action now: exit
