"""Operator control of live sessions, delivered through the session's channel-layer group.

The group reaches the session's consumer whichever process holds its WebSocket.
"""

from __future__ import annotations

import uuid

from channels.layers import get_channel_layer

from sessions_app.models import group_name
from sessions_app.store import end_session


async def interrupt_session(session_id: uuid.UUID, source: str = "operator") -> None:
    """Ask the session's playback to stop now (a barge-in without caller speech)."""
    await get_channel_layer().group_send(
        group_name(session_id), {"type": "playback.cancel", "source": source}
    )


async def end_live_session(session_id: uuid.UUID, reason: str) -> bool:
    """Mark the session ended and tell its consumer, if one is connected, to close it."""
    ended = await end_session(session_id, reason)
    await get_channel_layer().group_send(
        group_name(session_id), {"type": "session.end", "reason": reason}
    )
    return ended
