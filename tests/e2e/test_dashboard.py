"""The dashboard in a real browser against a real daphne server: a text conversation end to end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, WebSocketRoute, expect

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/dashboard.png"


@pytest.fixture
def page(chromium: Browser, server_url: str) -> Iterator[Page]:
    """A fresh page on the dashboard; fails the test on any JavaScript or console error."""
    context = chromium.new_context(viewport={"width": 1280, "height": 860}, color_scheme="light")
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
    assert problems == []


def event_items(page: Page) -> list[tuple[str, int]]:
    """(type, seq) of every item in the event list, in page order."""
    return page.get_by_test_id("event-item").evaluate_all(
        "items => items.map(item => [item.dataset.type, Number(item.dataset.seq)])"
    )


def send_text(page: Page, text: str, *, press_enter: bool) -> None:
    page.get_by_test_id("text-input").fill(text)
    if press_enter:
        page.get_by_test_id("text-input").press("Enter")
    else:
        page.get_by_test_id("send-button").click()


def last_agent_bubble(page: Page) -> Locator:
    return page.get_by_test_id("agent-bubble").last


def test_text_conversation_in_the_dashboard(page: Page) -> None:
    status = page.get_by_test_id("status")
    transcript = page.get_by_test_id("transcript")

    expect(page.get_by_test_id("agent-select")).to_have_value("echo")
    page.get_by_test_id("start-button").click()
    expect(status).to_have_attribute("data-state", "live")

    send_text(page, "hello browser", press_enter=True)
    expect(last_agent_bubble(page)).to_have_attribute("data-state", "final")
    expect(last_agent_bubble(page)).to_contain_text("You said: hello browser")
    expect(page.get_by_test_id("user-bubble").locator("p")).to_have_text(["hello browser"])

    items = event_items(page)
    types = [kind for kind, _ in items]
    assert types[0] == "session_started"
    assert {"session_started", "transcript_final", "agent_response"} <= set(types)
    assert [seq for _, seq in items] == list(range(1, len(items) + 1))

    send_text(page, "card 4111 1111 1111 1111", press_enter=False)
    expect(page.get_by_test_id("agent-bubble")).to_have_count(2)
    expect(last_agent_bubble(page)).to_have_attribute("data-state", "final")
    expect(last_agent_bubble(page)).to_contain_text("You said: card [redacted]")
    expect(page.get_by_test_id("user-bubble").last).to_contain_text("card [redacted]")
    assert "4111" not in transcript.inner_text()
    assert "4111" not in (page.get_by_test_id("event-list").text_content() or "")

    page.get_by_test_id("end-button").click()
    expect(status).to_have_attribute("data-state", "ended")
    expect(status).to_contain_text("ended: client_ended")
    expect(status).to_contain_text("socket closed (code 1000)")
    expect(page.get_by_test_id("start-button")).to_be_enabled()

    items = event_items(page)
    assert items[-1][0] == "session_ended"
    assert [seq for _, seq in items] == list(range(1, len(items) + 1))
    assert "error" not in {kind for kind, _ in items}

    # Unfold one payload so the screenshot shows it.
    page.locator('[data-testid="event-item"][data-type="transcript_final"] summary').last.click()
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_tool_chip_error_event_and_audio_frames(page: Page) -> None:
    """The rules agent's tool call, a refused message shown as an error, binary frames counted."""
    silence = b"\x00\x00" * 320  # 20 ms of PCM16 at 16 kHz

    def forward_with_audio(page_side: WebSocketRoute) -> None:
        # Stand-in for agent audio until the server sends it: two binary frames after the start.
        server_side = page_side.connect_to_server()

        def to_page(message: str | bytes) -> None:
            page_side.send(message)
            if isinstance(message, str) and '"session_started"' in message:
                page_side.send(silence)
                page_side.send(silence)

        server_side.on_message(to_page)

    page.route_web_socket("**/ws/sessions/**", forward_with_audio)
    page.get_by_test_id("agent-select").select_option("rules")
    page.get_by_test_id("start-button").click()
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "live")
    expect(page.get_by_test_id("audio-frames")).to_have_text("2")

    send_text(page, "where is order 12345", press_enter=True)
    expect(page.get_by_test_id("tool-chip")).to_contain_text("order_status")
    expect(last_agent_bubble(page)).to_have_attribute("data-state", "final")

    send_text(page, "x" * 4001, press_enter=True)
    error = page.locator('[data-testid="event-item"][data-type="error"]')
    expect(error).to_have_count(1)
    expect(error).to_contain_text("payload_too_large")
    expect(error).to_have_css("color", "rgb(180, 35, 24)")
    expect(page.get_by_test_id("transcript-error")).to_contain_text("payload_too_large")
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "live")

    items = event_items(page)
    assert [seq for _, seq in items] == list(range(1, len(items) + 1))
