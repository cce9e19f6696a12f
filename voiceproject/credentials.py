"""Masking credentials out of text bound for a log line, a debug page or an error report.

Two nets: patterns that look like credentials wherever they come from (a password in a URL,
an access key in a connection string, a `secret=` or `token=` query parameter), and the
configured credential values themselves, wherever they turn up.
"""

from __future__ import annotations

import contextlib
import html
import re
from urllib.parse import urlsplit

from django.conf import settings

MASK = "********"
# Settings whose values are credentials; their names need not look like it (ACS_…_STRING).
CREDENTIAL_SETTINGS = (
    "SECRET_KEY",
    "ACS_CONNECTION_STRING",
    "ACS_WEBHOOK_SECRET",
    "OPENAI_API_KEY",
    "REDIS_URL",
)
SHORTEST_MASKED_VALUE = 6  # a shorter value would mask ordinary words along with it

_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@\s/]+)(@)", re.I)
_ACCESS_KEY = re.compile(r"((?:accesskey|sharedaccesskey|password|pwd)=)([^;&\s\"']+)", re.I)
_QUERY_SECRET = re.compile(r"([?&;](?:secret|token|access_token)=)([^&;#\s\"']*)", re.I)


def mask_credentials(text: str) -> str:
    """`text` with every credential it holds replaced by a mask."""
    for value in configured_credentials():
        if value in text:
            text = text.replace(value, MASK)
        escaped = html.escape(value)
        if escaped != value and escaped in text:
            text = text.replace(escaped, MASK)
    text = _URL_PASSWORD.sub(rf"\1{MASK}\3", text)
    text = _ACCESS_KEY.sub(rf"\1{MASK}", text)
    return _QUERY_SECRET.sub(rf"\1{MASK}", text)


def configured_credentials() -> list[str]:
    """The credential values this server is configured with, longest first."""
    values: set[str] = set()
    for name in CREDENTIAL_SETTINGS:
        value = str(getattr(settings, name, "") or "")
        values.add(value)
        values.update(_secret_parts(value))
    values.update(str(db.get("PASSWORD") or "") for db in settings.DATABASES.values())
    usable = (value for value in values if len(value) >= SHORTEST_MASKED_VALUE)
    return sorted(usable, key=len, reverse=True)


def _secret_parts(value: str) -> list[str]:
    """The secret inside a URL (its password) or a connection string (its access key)."""
    parts = [match.group(2) for match in _ACCESS_KEY.finditer(value)]
    if "://" in value:
        with contextlib.suppress(ValueError):  # not a URL after all
            parts.append(urlsplit(value).password or "")
    return parts
