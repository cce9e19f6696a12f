"""SECRET_KEY: from the environment, else one generated per install and kept in a file.

A key everyone knows (the old development default, the example file's placeholder) signs
session tokens and logins anyone could forge: the server refuses to start on one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

WELL_KNOWN_KEYS = frozenset({"dev-only-insecure-key-set-SECRET_KEY-in-production", "change-me"})


def load_secret_key(configured: str, key_file: Path) -> str:
    """`configured` if set (and not well known); else the install's own key from `key_file`."""
    if configured in WELL_KNOWN_KEYS:
        raise ImproperlyConfigured(
            "SECRET_KEY is a well-known example value: set a secret one, or unset it to use a "
            f"key generated for this install ({key_file})"
        )
    if configured:
        return configured
    if not key_file.exists():
        _create_key_file(key_file)
    key = key_file.read_text().strip()
    if not key:
        raise ImproperlyConfigured(f"{key_file} is empty: delete it to generate a new key")
    return key


def _create_key_file(key_file: Path) -> None:
    """Write a new key readable by its owner only; atomic, so that processes starting
    together (tests, several daphnes) all end up with the one key that won."""
    draft = key_file.with_name(f"{key_file.name}.{os.getpid()}.tmp")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as out:
            out.write(get_random_secret_key() + "\n")
        with contextlib.suppress(FileExistsError):  # another process won: use its key
            os.link(draft, key_file)
    finally:
        draft.unlink(missing_ok=True)
