"""Whether telephony is configured: the ACS endpoints refuse to work half-configured."""

from __future__ import annotations

from django.conf import settings


def missing_settings() -> list[str]:
    """The ACS settings still blank; empty when phone calls can be answered."""
    required = ["ACS_CONNECTION_STRING", "ACS_CALLBACK_BASE_URL", "ACS_WEBHOOK_SECRET"]
    if settings.ACS_VERIFY_JWT:
        required.append("ACS_JWT_AUDIENCE")
    return [name for name in required if not getattr(settings, name)]


def not_configured_message(missing: list[str]) -> str:
    return f"telephony is not configured: set {', '.join(missing)} (README, Phone calls)"
