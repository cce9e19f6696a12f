"""Graceful shutdown: on SIGTERM, end every live session of this process, then exit.

daphne on Twisted's asyncio reactor installs no SIGTERM handler, so the process would die
mid-sentence with its sessions left active. This ends each live session with reason
`server_shutdown` (stored, told to the caller) within a grace period, then exits as SIGTERM
would have.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Protocol

from django.conf import settings

logger = logging.getLogger(__name__)

GRACE_S = 5.0
# Time for the sessions' close frames to leave before the process goes.
FLUSH_S = 0.2


class LiveSession(Protocol):
    async def end_session(self, reason: str, close_code: int = 1000) -> None: ...


_live: set[LiveSession] = set()
_handled_loops: set[asyncio.AbstractEventLoop] = set()
_shutting_down: list[asyncio.Task[None]] = []


def track(session: LiveSession) -> None:
    """A session went live in this process: end it on SIGTERM."""
    _install_handler()
    _live.add(session)


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
        endings = [asyncio.ensure_future(s.end_session("server_shutdown", 1001)) for s in live]
        await asyncio.wait(endings, timeout=GRACE_S)
        await asyncio.sleep(FLUSH_S)
    asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)  # the default action now: exit
