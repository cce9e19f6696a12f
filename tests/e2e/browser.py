"""Debian's chromium, the dashboard opened in it, and what the dashboard shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Locator, Page, Playwright, expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def launch_chromium(playwright: Playwright, *extra_args: str) -> Browser:
    """Headless Debian chromium with our flags, plus `extra_args` (a fake microphone, say)."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *extra_args]
    )


@contextmanager
def open_dashboard(browser: Browser, server_url: str) -> Iterator[Page]:
    """A fresh page on the dashboard; fails the test on any JavaScript or console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme="light")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    page.goto(f"{server_url}/")
    yield page
    context.close()
    assert problems == [], problems


def log_in(page: Page, server_url: str, username: str, password: str) -> None:
    """Log in as an operator through the login page (the admin's), back to the dashboard."""
    # The admin's pages name no icon: Chromium's /favicon.ico would be a 404 console error.
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page.goto(f"{server_url}/admin/login/?next=/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    with page.expect_navigation(url=f"{server_url}/"):
        page.locator('input[type="submit"]').click()
    expect(page.get_by_test_id("account-name")).to_have_text(username)


def event_items(page: Page) -> list[tuple[str, int]]:
    """(type, seq) of every event in the event list, in seq order: a reply's folded
    agent_response row stands for all its events (data-seqs)."""
    items = page.get_by_test_id("event-item").evaluate_all(
        "items => items.flatMap(item => (item.dataset.seqs ?? item.dataset.seq).split(',')"
        "  .map(seq => [item.dataset.type, Number(seq)]))"
    )
    return sorted(items, key=lambda item: item[1])


def events_of(page: Page, event_type: str) -> Locator:
    return page.locator(f'[data-testid="event-item"][data-type="{event_type}"]')


def payload(item: Locator) -> dict[str, Any]:
    """The event an event-list item shows (its JSON payload, folded or not)."""
    return json.loads(item.locator(".event__payload").text_content() or "")


def start_session(page: Page, agent: str = "echo") -> None:
    page.get_by_test_id("agent-select").select_option(agent)
    page.get_by_test_id("start-button").click()
