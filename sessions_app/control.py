"""Operator control of live sessions, delivered through the session's channel-layer group.

The group reaches the session's consumer whichever process holds its WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from channels.layers import get_channel_layer
from redis.exceptions import RedisError

from sessions_app.acs.calls import hang_up_session
from sessions_app.models import group_name, watch_group_name
from sessions_app.store import end_session

logger = logging.getLogger(__name__)

# What a channel layer raises when its backing service is away (Redis down or restarting).
LAYER_OUTAGES = (RedisError, OSError)


def raise_if_cancelled(outage: BaseException) -> None:
    """Re-raise a cancellation that redis-py turned into an "outage".

    Cancelled mid-command, redis-py drops the connection and may raise ConnectionError in
    place of CancelledError: riding that out as an outage would let a cancelled task (a
    barged-in reply, a closing consumer) carry on.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError() from outage


async def interrupt_session(session_id: uuid.UUID, source: str = "operator") -> None:
    """Ask the session's playback to stop now (a barge-in without caller speech)."""
    await get_channel_layer().group_send(
        group_name(session_id), {"type": "playback.cancel", "source": source}
    )


async def end_live_session(session_id: uuid.UUID, reason: str) -> bool:
    """Tell the session's consumer, if one is connected, to end it; mark it ended; hang up
    its phone call, if it has one.

    The message goes first: if the layer is down this raises before anything changed.
    """
    await ask_to_end(session_id, reason)
    ended = await end_session(session_id, reason)
    await hang_up_session(session_id)  # a phone call, even one whose media never connected
    return ended


async def ask_to_end(session_id: uuid.UUID, reason: str) -> None:
    """Ask the session's consumer, wherever it runs, to end the conversation."""
    await get_channel_layer().group_send(
        group_name(session_id), {"type": "session.end", "reason": reason}
    )


async def publish_to_watchers(session_id: uuid.UUID, event: dict[str, Any]) -> None:
    """Show a session's event to whoever follows it; a layer outage costs only the view."""
    try:
        await get_channel_layer().group_send(
            watch_group_name(session_id), {"type": "session.event", "event": event}
        )
    except LAYER_OUTAGES as exc:
        raise_if_cancelled(exc)
        logger.debug("event not shown to watchers: %s", type(exc).__name__)


class WatcherFeed:
    """A session's events to its watchers, in seq order, published by one task of its own.

    Whoever sends an event (a reply's task, the consumer) stamps and queues it here. Publishing
    from the sender itself lost events over Redis: a barge-in cancels the reply's task while it
    awaits the publish of an event already stamped (`playback_started`), and the watchers saw
    a seq gap. Queued, an event is published whatever happens to its sender.
    """

    limit = 1000  # events; a watcher layer this far behind loses the newest, with a warning

    def __init__(self, session_id: uuid.UUID) -> None:
        self._session_id = session_id
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=self.limit)
        self._task = asyncio.create_task(self._run())

    def publish(self, event: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            logger.warning(
                "session %s: watchers fell behind, an event was not shown", self._session_id
            )

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            await publish_to_watchers(self._session_id, event)
            self._queue.task_done()

    async def aclose(self, timeout_s: float = 2.0) -> None:
        """Publish what is queued (`session_ended` last), then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout_s)
        self._task.cancel()
        await asyncio.wait([self._task])


class ControlReceiver:
    """Receives a live session's control messages, riding out channel layer outages.

    A Redis restart would otherwise raise out of the consumer and close the caller's socket,
    though the session's own audio and turns need no Redis. Instead this waits, retries with
    backoff, and re-joins the session's group once the layer answers (a restarted Redis
    has forgotten it).
    """

    max_delay_s = 2.0

    def __init__(
        self, receive: Callable[[], Awaitable[dict[str, Any]]], join: Callable[[], Awaitable[None]]
    ) -> None:
        self._receive = receive
        self._join = join
        self._wants_group = False  # set once the session is live
        self._in_group = False

    async def ensure_joined(self) -> None:
        """Join the group now if the layer answers; otherwise the next receive will."""
        self._wants_group = True
        try:
            await self._join()
            self._in_group = True
        except LAYER_OUTAGES as exc:
            logger.warning("channel layer unavailable (%s): control waits", type(exc).__name__)

    async def __call__(self) -> dict[str, Any]:
        delay = 0.1
        while True:
            try:
                if self._wants_group and not self._in_group:
                    await self._join()
                    self._in_group = True
                    logger.info("session control re-joined its group")
                return await self._receive()
            except LAYER_OUTAGES as exc:
                raise_if_cancelled(exc)
                if self._in_group:
                    logger.warning("channel layer lost (%s): retrying", type(exc).__name__)
                self._in_group = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay_s)
