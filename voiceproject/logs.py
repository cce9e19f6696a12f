"""Log lines an operator can search and nothing they must not read.

`SessionContextFilter` (on the console handler) attaches the running session's ids to every
record, whatever logger wrote it, and runs the message through the digit redaction: a log
line never holds a card or account number, even if a caller's words slip into one.
`JsonFormatter` (LOG_FORMAT=json) writes one JSON object per line.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from sessions_app import log_context
from sessions_app.redaction import redact_digits

CONTEXT_FIELDS = ("session_id", "turn", "call_connection_id")


class SessionContextFilter(logging.Filter):
    """Adds session_id, turn and call_connection_id to a record; redacts its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in log_context.current().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        record.msg = redact_digits(record.getMessage())
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the session's ids, and for an
    exception its type and (redacted) traceback."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        entry: dict[str, object] = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            entry[name] = getattr(record, name, None)
        if record.exc_info:
            entry["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            entry["traceback"] = redact_digits(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)
