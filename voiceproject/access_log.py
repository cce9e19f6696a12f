"""Access logs without credentials: the webhook's `?secret=`, a socket's `?token=`.

Event Grid posts `/acs/events?secret=…` and browsers open `/ws/sessions/<id>/?token=…`; daphne
logs each request's full path. Under `manage.py runserver` it logs through the logger
`django.channels.server`, which LOGGING gives `MaskCredentialsFilter`; daphne's command line
writes its access log straight to a stream, with no logger or hook to filter, so
`mask_daphne_access_log` wraps the one class it writes it with.
"""

from __future__ import annotations

import functools
import logging

from voiceproject.credentials import mask_credentials


class MaskCredentialsFilter(logging.Filter):
    """Masks credentials in a record's message and its arguments (runserver passes a dict)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_credentials(record.msg)
        if isinstance(record.args, dict):
            record.args = {key: _masked(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_masked(value) for value in record.args)
        return True


def _masked(value: object) -> object:
    return mask_credentials(value) if isinstance(value, str) else value


def mask_daphne_access_log() -> None:
    """Make daphne's command-line access log mask credentials in the paths it writes."""
    from daphne.access import AccessLogGenerator

    log_action = AccessLogGenerator.__call__
    if getattr(log_action, "masks_credentials", False):
        return

    @functools.wraps(log_action)
    def masked_log_action(self, protocol: str, action: str, details: dict) -> None:
        if isinstance(details.get("path"), str):
            details = {**details, "path": mask_credentials(details["path"])}
        log_action(self, protocol, action, details)

    masked_log_action.masks_credentials = True
    AccessLogGenerator.__call__ = masked_log_action
