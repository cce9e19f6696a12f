"""No secret leaves: debug pages, error reports and log lines hold no credential."""

from __future__ import annotations

import json
import logging
import sys
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import RequestFactory
from django.views.debug import technical_500_response

from tests.fakes.acs_events import validation_event
from tests.servers import migrate, running_daphne, server_env
from voiceproject.credentials import mask_credentials

ACCESS_KEY = "c2VjcmV0LWFjY2Vzcy1rZXktb2YtdGhlLWFjcw=="
OPENAI_KEY = "sk-test-0123456789abcdef"
WEBHOOK_SECRET = "webhook-secret-0123456789"
DB_PASSWORD = "db-password-0123456789"
REDIS_PASSWORD = "redis-password-0123456789"
REDIS_URL = f"redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0"


@pytest.fixture
def credentials(settings, monkeypatch) -> list[str]:
    """Settings full of credentials; the values that must never be shown."""
    settings.DEBUG = True
    settings.ACS_CONNECTION_STRING = (
        f"endpoint=https://voice.communication.azure.com/;accesskey={ACCESS_KEY}"
    )
    settings.OPENAI_API_KEY = OPENAI_KEY
    settings.ACS_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.REDIS_URL = REDIS_URL
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    monkeypatch.setitem(django_settings.DATABASES["default"], "PASSWORD", DB_PASSWORD)
    # A setting whose name says nothing: its URL's password is masked all the same.
    settings.ANALYTICS_DB = f"postgres://voice:{DB_PASSWORD}@db.example:5432/voice"
    return [
        ACCESS_KEY,
        OPENAI_KEY,
        WEBHOOK_SECRET,
        DB_PASSWORD,
        REDIS_PASSWORD,
        django_settings.SECRET_KEY,
    ]


def a_failing_view(request, secret_in_a_local: str) -> None:
    raise RuntimeError("the database is locked")


def debug_page(path: str, meta: dict[str, str] | None = None) -> str:
    """The debug page (DEBUG=True) of an error raised in a view."""
    request = RequestFactory().post(
        path, data=json.dumps({"note": "hi"}), content_type="application/json", **(meta or {})
    )
    try:
        a_failing_view(request, secret_in_a_local=WEBHOOK_SECRET)
    except RuntimeError:
        return technical_500_response(request, *sys.exc_info()).content.decode()
    raise AssertionError("the view did not fail")


def test_the_debug_page_shows_no_credential(credentials):
    html = debug_page(
        f"/acs/events?secret={WEBHOOK_SECRET}&other=1",
        {"HTTP_AUTHORIZATION": f"Bearer {OPENAI_KEY}", "HTTP_X_NOTE": REDIS_URL},
    )
    assert "the database is locked" in html, "the page is the debug page"
    assert "ACS_CONNECTION_STRING" in html and "ANALYTICS_DB" in html
    assert "db.example" in html, "a URL shows, its password does not"
    for value in credentials:
        assert value not in html


def test_the_plain_text_error_report_shows_no_credential(credentials):
    from django.views.debug import ExceptionReporter, get_exception_reporter_class

    request = RequestFactory().get(f"/acs/events?secret={WEBHOOK_SECRET}")
    reporter_class = get_exception_reporter_class(request)
    assert issubclass(reporter_class, ExceptionReporter)
    try:
        a_failing_view(request, secret_in_a_local=OPENAI_KEY)
    except RuntimeError:
        report = reporter_class(request, *sys.exc_info()).get_traceback_text()
    assert "the database is locked" in report
    for value in credentials:
        assert value not in report


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("POST /acs/events?secret=abc123", "POST /acs/events?secret=********"),
        ("/ws/sessions/1/?token=a1:b2:c3", "/ws/sessions/1/?token=********"),
        ("redis://user:pw123@host:6379/0", "redis://user:********@host:6379/0"),
        ("endpoint=https://x/;accesskey=abc==", "endpoint=https://x/;accesskey=********"),
        ("GET /api/sessions?status=active", "GET /api/sessions?status=active"),
    ],
)
def test_credential_patterns_are_masked(text, shown):
    assert mask_credentials(text) == shown


def test_runserver_access_log_lines_are_masked(caplog):
    """manage.py runserver logs each request through django.channels.server (daphne)."""
    logger = logging.getLogger("django.channels.server")
    record = logger.makeRecord(
        logger.name,
        logging.INFO,
        __file__,
        1,
        "HTTP %(method)s %(path)s %(status)s",
        ({"method": "POST", "path": f"/acs/events?secret={WEBHOOK_SECRET}", "status": 200},),
        None,
    )
    assert all(f.filter(record) for f in logger.filters)
    assert record.getMessage() == "HTTP POST /acs/events?secret=******** 200"


def test_an_event_grid_post_through_daphne_logs_no_secret(tmp_path: Path):
    """daphne's own access log (its command line, as tests/servers.py runs it) writes every
    request's path; the webhook's secret and a socket's token must not reach it."""
    env = server_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        ACS_CONNECTION_STRING=f"endpoint=https://127.0.0.1:9/;accesskey={ACCESS_KEY}",
        ACS_CALLBACK_BASE_URL="https://voice.example.test",
        ACS_WEBHOOK_SECRET=WEBHOOK_SECRET,
        ACS_JWT_AUDIENCE="00000000-0000-0000-0000-00000000acs0",
        LOG_LEVEL="DEBUG",
    )
    migrate(env)
    log = tmp_path / "daphne.log"
    with running_daphne(env, log) as url:
        request = urllib.request.Request(
            f"{url}/acs/events?secret={WEBHOOK_SECRET}",
            data=json.dumps([validation_event("code-42")]).encode(),
            headers={
                "Content-Type": "application/json",
                "aeg-event-type": "SubscriptionValidation",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            assert json.loads(response.read()) == {"validationResponse": "code-42"}
    written = log.read_text()
    assert "POST /acs/events?secret=********" in written, "the access log has the request"
    assert WEBHOOK_SECRET not in written
    assert ACCESS_KEY not in written
