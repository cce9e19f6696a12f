"""LOG_FORMAT=json: one object a line, each naming its session (and turn), no digit run."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from django.conf import settings

from agents_app.models import Agent
from agents_app.strategies import STRATEGIES
from voiceproject.logs import JsonFormatter, SessionContextFilter

pytestmark = pytest.mark.django_db(transaction=True)

DIGIT_RUN = re.compile(r"\d(?:[\s.-]{0,3}\d){11,}")
CARD = "4111 1111 1111 1111"


class ChattyStrategy:
    """An engine that logs what it was asked, as a careless engine might (and a retry)."""

    def __init__(self, spec: object) -> None:
        self.logger = logging.getLogger("agents_app.strategies.chatty")

    async def stream_reply(self, messages, tools):
        self.logger.warning("asked %r", messages[-1]["content"])
        logging.getLogger("agents_app.retry").warning("retrying after a timeout (attempt 2)")
        yield "Noted."

    async def aclose(self) -> None:
        return None


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The console handler as LOG_FORMAT=json configures it, on the project's loggers."""
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(SessionContextFilter())
    loggers = [logging.getLogger(name) for name in ("sessions_app", "agents_app")]
    for logger in loggers:
        logger.addHandler(handler)
    yield lines
    for logger in loggers:
        logger.removeHandler(handler)


def test_settings_choose_the_json_formatter_for_log_format_json():
    console = settings.LOGGING["handlers"]["console"]
    assert "session_context" in console["filters"]
    assert settings.LOGGING["formatters"]["json"]["()"] == "voiceproject.logs.JsonFormatter"


async def test_engine_logs_carry_the_session_and_turn_and_no_digit_run(
    stream, monkeypatch, json_log
):
    monkeypatch.setitem(STRATEGIES, "chatty", ChattyStrategy)
    await Agent.objects.acreate(name="chatty", strategy="chatty")
    client = await stream(agent="chatty")
    await client.reply_to(f"my card is {CARD}")

    entries = [json.loads(line) for line in json_log.getvalue().splitlines()]
    engine = [e for e in entries if e["logger"].startswith("agents_app")]
    assert {e["logger"] for e in engine} == {"agents_app.strategies.chatty", "agents_app.retry"}
    for entry in engine:
        assert set(entry) >= {"ts", "level", "logger", "message", "session_id", "turn"}
        assert entry["session_id"] == str(client.session.id)
        assert entry["turn"] == 1
        assert entry["call_connection_id"] is None
        assert entry["level"] == "WARNING"
        assert entry["ts"].endswith("Z")
    asked = next(e for e in engine if e["logger"].endswith("chatty"))
    assert "my card is [redacted]" in asked["message"]
    for entry in entries:
        assert not DIGIT_RUN.search(entry["message"]), entry


def test_a_line_outside_any_session_names_none(json_log):
    logging.getLogger("sessions_app.test").error("no session here, order 123456789012345")
    (entry,) = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert entry["session_id"] is None and entry["turn"] is None
    assert entry["message"] == "no session here, order [redacted]"


def test_an_exception_is_named_and_its_traceback_redacted(json_log):
    try:
        raise ValueError(f"bad card {CARD}")
    except ValueError:
        logging.getLogger("agents_app.test").exception("engine failed")
    (entry,) = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert entry["exc_type"] == "ValueError"
    assert "bad card [redacted]" in entry["traceback"]
    assert CARD not in json_log.getvalue()
