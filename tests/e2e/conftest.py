"""Browser fixtures: a real daphne server on a fresh SQLite file, and Debian's chromium.

The server runs the default voice engines (pocketsphinx, espeak, hybrid VAD) whatever the
environment says, so the dashboard hears and speaks as it does for a user.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.e2e.browser import CHROMIUM, launch_chromium

REPO_ROOT = Path(__file__).resolve().parents[2]
VOICE_ENGINES = {"STT_ENGINE": "pocketsphinx", "TTS_ENGINE": "espeak", "VAD_ENGINE": "hybrid"}
SERVER_START_TIMEOUT_S = 30.0
SERVER_STOP_TIMEOUT_S = 10.0


def require_chromium() -> None:
    """Skip without Debian's chromium; with REQUIRE_SERVICES=1 (CI), fail instead."""
    if CHROMIUM.exists():
        return
    reason = f"chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}, and REQUIRE_SERVICES=1 says it must be")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_for_health(url: str, server: subprocess.Popen, log: Path) -> None:
    """Poll /health until it answers 200; fail early if the server exits."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"daphne exited with {server.returncode}:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"daphne did not answer /health in {SERVER_START_TIMEOUT_S} s:\n{log_tail(log)}")


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=SERVER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A daphne process serving the project on a free port, with its own migrated SQLite DB."""
    workdir = tmp_path_factory.mktemp("e2e-server")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "DEBUG": "1",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        **VOICE_ENGINES,
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    log = workdir / "daphne.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            + ["voiceproject.asgi:application"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, server, log)
        yield url
    finally:
        stop(server)


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
