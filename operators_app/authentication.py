"""Who an API token speaks for: its user, if the token is live and the user active."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone

from operators_app.models import TOKEN_PREFIX, ApiToken, token_digest

# last_used_at is refreshed at most this often: not one write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def is_api_token(raw: str) -> bool:
    return raw.startswith(TOKEN_PREFIX)


async def user_for_api_token(raw: str) -> AbstractBaseUser | None:
    """The user a raw token acts for; None when it is unknown, revoked or its user inactive."""
    token = (
        await ApiToken.objects.select_related("user")
        .filter(digest=token_digest(raw), revoked_at__isnull=True)
        .afirst()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        await ApiToken.objects.filter(pk=token.pk).aupdate(last_used_at=now)
    return token.user
