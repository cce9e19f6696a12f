"""Untrusted strings made storable: the one place lone surrogates and NULs are cleaned.

JSON may carry an escaped lone surrogate ("\\ud800"); Python decodes it into a str that no
UTF-8 database, log line or JSON encoder accepts. PostgreSQL text cannot hold NUL ("\\u0000")
either. Every string from a client, a REST body or ACS passes through `clean_text` before it
is stored or used.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` with every lone surrogate and NUL replaced by U+FFFD (nothing else changes)."""
    return _UNSTORABLE.sub(REPLACEMENT, text)
