"""Which session (and which of its turns, which phone call) the code running now works for.

Context variables, so that every log line of a session carries its ids without being passed
them: asyncio tasks copy the context when they are created, so ids bound where a session's
work starts (the consumer) reach its recognition, playback and agent tasks, and agents_app's
engine and retry logs, which know nothing of sessions. voiceproject/logs.py reads them.
"""

from __future__ import annotations

import contextvars

session_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("session_id", default=None)
turn: contextvars.ContextVar[int | None] = contextvars.ContextVar("turn", default=None)
call_connection_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "call_connection_id", default=None
)


def bind_session(session: object, call_connection: str | None = None) -> None:
    """From here on, in this task and the tasks it creates, logs name this session (and call)."""
    session_id.set(str(session) if session is not None else None)
    call_connection_id.set(call_connection or None)


def bind_turn(number: int) -> None:
    """From here on, in this task (an agent turn's own), logs name this turn."""
    turn.set(number)


def current() -> dict[str, str | int | None]:
    """The ids to attach to a log line written now."""
    return {
        "session_id": session_id.get(),
        "turn": turn.get(),
        "call_connection_id": call_connection_id.get(),
    }
