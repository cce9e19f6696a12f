"""ACS's signed requests: the bearer JWT on callbacks and on the media WebSocket.

ACS signs both with RS256 under keys it publishes as a JWKS; the audience is the resource's
immutable id (ACS_JWT_AUDIENCE). Without this check anyone who learns a session id could end
the call or stream audio into it. ACS_VERIFY_JWT=false switches it off, for local testing only.
"""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache

import jwt
from django.conf import settings

logger = logging.getLogger(__name__)

ACS_ISSUER = "https://acscallautomation.communication.azure.com"
LEEWAY_S = 30  # clock skew between ACS and this server


class AcsTokenRefused(Exception):
    """The request carries no valid ACS token; the message says why (never the token)."""


@lru_cache(maxsize=4)
def _keys(url: str) -> jwt.PyJWKClient:
    # One client per URL keeps the key set cached (5 min) across requests. An unknown kid
    # makes it fetch again, at most once per 30 s (PyJWT's cooldown), so ACS's key rotation
    # is picked up while forged key ids cannot make this server hammer ACS's key endpoint.
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)


def bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AcsTokenRefused("missing bearer token")
    return token.strip()


def _verify(token: str) -> dict:
    try:
        key = _keys(settings.ACS_JWKS_URL).get_signing_key_from_jwt(token)
        return jwt.decode(
            token,
            key.key,
            algorithms=["RS256"],
            audience=settings.ACS_JWT_AUDIENCE,
            issuer=ACS_ISSUER,
            leeway=LEEWAY_S,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AcsTokenRefused("token expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise AcsTokenRefused("token for another audience") from exc
    except jwt.InvalidIssuerError as exc:
        raise AcsTokenRefused("token from another issuer") from exc
    except jwt.PyJWKClientConnectionError as exc:
        logger.error("ACS signing keys unavailable from %s", settings.ACS_JWKS_URL)
        raise AcsTokenRefused("signing keys unavailable") from exc
    except (jwt.PyJWKClientError, jwt.InvalidTokenError) as exc:
        raise AcsTokenRefused("invalid token") from exc


async def verify_acs_request(authorization: str | None) -> None:
    """Accept a callback or media connection only if ACS signed it; raises AcsTokenRefused."""
    if not settings.ACS_VERIFY_JWT:
        return
    token = bearer_token(authorization)
    # Key fetches are blocking HTTP (cached after the first): off the event loop.
    await asyncio.to_thread(_verify, token)
