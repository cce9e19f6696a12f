"""API tokens: how a script acts as an operator. Only a hash and a short prefix are kept."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

# Every raw token starts so; a session token (sessions_app/tokens.py) never does.
TOKEN_PREFIX = "vat_"
SHOWN_PREFIX_CHARS = 12


def token_digest(raw: str) -> str:
    """The stored form of a token. Tokens are 256 random bits: a fast hash is enough."""
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenManager(models.Manager["ApiToken"]):
    def issue(self, user: models.Model, name: str) -> tuple[ApiToken, str]:
        """A new token for `user`: the stored row, and the raw value (shown once, never kept)."""
        token = self.model(user=user, name=name)
        raw = token.set_new_secret()
        token.save()
        return token, raw


class ApiToken(models.Model):
    """A credential for scripts (`Authorization: Bearer <token>`), acting with its user's
    permissions until revoked."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for.")
    prefix = models.CharField(max_length=SHOWN_PREFIX_CHARS, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenManager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    def set_new_secret(self) -> str:
        """Give this (unsaved) token a fresh secret; the raw value, which is not kept."""
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.prefix = raw[:SHOWN_PREFIX_CHARS]
        self.digest = token_digest(raw)
        return raw

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])
