"""Browser fixtures: a real daphne server on a fresh SQLite file, and Debian's chromium.

The server runs the default voice engines (whisper, espeak, hybrid VAD) whatever the
environment says, so the dashboard hears and speaks as it does for a user.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.e2e.browser import CHROMIUM, launch_chromium
from tests.servers import migrate, running_daphne, server_env

VOICE_ENGINES = {"STT_ENGINE": "whisper", "TTS_ENGINE": "espeak", "VAD_ENGINE": "hybrid"}


def require_chromium() -> None:
    """Skip without Debian's chromium; with REQUIRE_SERVICES=1 (CI), fail instead."""
    if CHROMIUM.exists():
        return
    reason = f"chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and REQUIRE_SERVICES=1 says it must be")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A daphne process serving the project on a free port, with its own migrated SQLite DB
    (and the Redis layer when REDIS_URL is set, as on CI's service stack)."""
    workdir = tmp_path_factory.mktemp("e2e-server")
    layer = {"REDIS_URL": os.environ["REDIS_URL"]} if os.environ.get("REDIS_URL") else {}
    env = server_env(
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        DEBUG="1",
        OPENAI_API_KEY="",  # the openai agent is listed, unavailable
        **layer,
        **VOICE_ENGINES,
    )
    migrate(env)
    with running_daphne(env, workdir / "daphne.log") as url:
        yield url


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's sync API, for one module (its event loop must not outlive the browser tests).

    Ask for it (or `chromium`) before the server, so a missing chromium skips first.
    """
    require_chromium()
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    browser = launch_chromium(playwright)
    yield browser
    browser.close()
