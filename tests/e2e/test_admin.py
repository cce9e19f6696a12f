"""The admin's session list in a real browser: it fits a 1366 px laptop screen."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.servers import (
    OPERATOR_PASSWORD,
    REPO_ROOT,
    create_superuser,
    migrate,
    running_daphne,
    server_env,
)

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/admin-sessions.png"
# Sessions as wide as they come: a phone caller's id, a failed call's state, counters.
SEED = """
from agents_app.models import Agent
from sessions_app.models import Session
rules = Agent.objects.get(name="rules")
Session.objects.create(agent=Agent.objects.get(name="openai"), channel="acs",
    caller_id="4:+14255550123", call_state="media_failed", status="failed",
    turn_count=128, interrupted_turn_count=64, barge_in_count=64, error_count=12)
for _ in range(3):
    Session.objects.create(agent=rules, status="ended", turn_count=4,
        interrupted_turn_count=2, barge_in_count=2, error_count=1)
"""


@pytest.fixture(scope="module")
def admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("e2e-admin")
    env = server_env(DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}")
    migrate(env)
    create_superuser(env, "admin")
    seeded = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SEED],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    with running_daphne(env, workdir / "daphne.log") as url:
        yield url


def test_the_session_list_fits_a_laptop_screen(chromium: Browser, admin_url: str) -> None:
    context = chromium.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page.goto(f"{admin_url}/admin/login/?next=/admin/sessions_app/session/")
    page.locator("#id_username").fill("admin")
    page.locator("#id_password").fill(OPERATOR_PASSWORD)
    page.locator('input[type="submit"]').click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(4)
    phone = rows.filter(has_text="Phone 4:+14255550123")
    expect(phone).to_contain_text("128 (64)")
    expect(phone).to_contain_text("Failed · Media streaming failed")

    results = page.locator("#changelist .results")
    scroll, visible = results.evaluate("node => [node.scrollWidth, node.clientWidth]")
    page.screenshot(path=SCREENSHOT)
    assert scroll <= visible, f"the list scrolls sideways: {scroll} px in {visible} px"
    header = page.locator("#result_list thead th").last
    assert header.bounding_box()["x"] + header.bounding_box()["width"] <= 1366
    context.close()
