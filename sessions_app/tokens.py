"""Signed, expiring session tokens: a WebSocket may only join the session it was issued for."""

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
    if not token:
        raise TokenRefused("missing session token")
    signer = signing.TimestampSigner(salt=_SALT)
    try:
        value = signer.unsign(token, max_age=settings.SESSION_TOKEN_MAX_AGE_S)
    except signing.SignatureExpired as exc:
        raise TokenRefused("session token expired") from exc
    except signing.BadSignature as exc:
        raise TokenRefused("invalid session token") from exc
    if value != session_id.hex:
        raise TokenRefused("token belongs to another session")
