"""Signed, expiring session tokens: a WebSocket may only join the session it was issued for.

The same token lets its caller read and end their session over REST (sessions_app/access.py),
for longer: SESSION_TOKEN_MAX_AGE_S bounds when the socket may open, SESSION_ACCESS_MAX_AGE_S
how long the caller keeps their session.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core import signing

_SALT = "sessions_app.stream-token"


class TokenRefused(Exception):
    """The token is missing, malformed, expired or for another session."""


def issue_token(session_id: uuid.UUID) -> str:
    return signing.TimestampSigner(salt=_SALT).sign(session_id.hex)


def check_token(token: str | None, session_id: uuid.UUID) -> None:
    """Refuse unless `token` opens the socket of `session_id` (and is fresh enough to)."""
    if session_of_token(token, settings.SESSION_TOKEN_MAX_AGE_S) != session_id:
        raise TokenRefused("token belongs to another session")


def session_of_token(token: str | None, max_age_s: int) -> uuid.UUID:
    """The session a token was issued for, if it is genuine and younger than `max_age_s`."""
    if not token:
        raise TokenRefused("missing session token")
    signer = signing.TimestampSigner(salt=_SALT)
    try:
        value = signer.unsign(token, max_age=max_age_s)
        return uuid.UUID(hex=value)
    except signing.SignatureExpired as exc:
        raise TokenRefused("session token expired") from exc
    except (signing.BadSignature, ValueError) as exc:
        raise TokenRefused("invalid session token") from exc
