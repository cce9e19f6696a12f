"""The dashboard in a real browser against a real daphne server: a text conversation end to end."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.browser import event_items, events_of, open_dashboard, payload, start_session

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/dashboard.png"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FRAME_MS = 20  # the server's agent audio frames


@pytest.fixture
def page(chromium: Browser, server_url: str) -> Iterator[Page]:
    with open_dashboard(chromium, server_url) as page:
        yield page


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
    # Ids in the payloads are random hex: one may hold "4111" by chance (1 run in a few hundred).
    shown = UUID.sub("<id>", page.get_by_test_id("event-list").text_content() or "")
    assert "4111" not in shown

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
    events_of(page, "transcript_final").last.locator("summary").click()
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_tool_chip_spoken_reply_and_error_event(page: Page) -> None:
    """The rules agent's tool call, its reply's audio frames counted, a refused message shown."""
    start_session(page, "rules")
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "live")

    send_text(page, "where is order 12345", press_enter=True)
    expect(page.get_by_test_id("tool-chip")).to_contain_text("order_status")
    expect(last_agent_bubble(page)).to_have_attribute("data-state", "final")
    expect(events_of(page, "playback_completed")).to_have_count(1, timeout=15_000)
    played_ms = payload(events_of(page, "playback_completed"))["played_ms"]
    frames = int(page.get_by_test_id("audio-frames").inner_text())
    # Every frame is FRAME_MS long but the last, which may be shorter.
    assert played_ms > 0
    assert played_ms / FRAME_MS <= frames < played_ms / FRAME_MS + 1.1

    send_text(page, "x" * 4001, press_enter=True)
    error = events_of(page, "error")
    expect(error).to_have_count(1)
    expect(error).to_contain_text("payload_too_large")
    expect(error).to_have_css("color", "rgb(180, 35, 24)")
    expect(page.get_by_test_id("transcript-error")).to_contain_text("payload_too_large")
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "live")

    items = event_items(page)
    assert [seq for _, seq in items] == list(range(1, len(items) + 1))


def test_a_reply_folds_into_one_growing_row_with_its_raw_events(page: Page) -> None:
    start_session(page, "echo")
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "live")
    send_text(page, "fold these words into one row", press_enter=True)
    expect(last_agent_bubble(page)).to_have_attribute("data-state", "final")

    reply = events_of(page, "agent_response")
    expect(reply).to_have_count(1)
    expect(reply).to_have_attribute("data-state", "final")
    expect(reply.locator(".event__brief")).to_contain_text(
        "final “You said: fold these words into one row”"
    )
    deltas = int(reply.get_attribute("data-deltas") or "0")
    assert deltas > 1  # the echo agent streams word by word: several deltas, one row

    # The raw events, one click away: every delta, then the final, each as sent.
    reply.locator("summary").first.click()
    reply.locator(".event__raw-summary").click()
    raw = reply.get_by_test_id("raw-events").locator(".event__raw-payload")
    expect(raw).to_have_count(deltas + 1)
    events = [json.loads(text) for text in raw.all_text_contents()]
    assert [event["type"] for event in events] == ["agent_response"] * (deltas + 1)
    assert [event.get("final", False) for event in events] == [False] * deltas + [True]
    assert "".join(event["delta"] for event in events[:-1]) == events[-1]["text"]
    assert [event["seq"] for event in events] == sorted(event["seq"] for event in events)
    assert payload(reply) == events[-1]

    send_text(page, "and a second reply", press_enter=True)
    expect(page.get_by_test_id("agent-bubble")).to_have_count(2)
    expect(last_agent_bubble(page)).to_have_attribute("data-state", "final")
    expect(events_of(page, "agent_response")).to_have_count(2)


def stage_ms(waterfall: Locator) -> dict[str, int]:
    """A drawn waterfall's stages: {stage: ms}, as its rows say."""
    rows = waterfall.get_by_test_id("waterfall-stage").all()
    return {
        row.get_attribute("data-stage") or "": int(row.get_attribute("data-ms") or -1)
        for row in rows
    }


def test_each_turn_is_drawn_as_a_waterfall_with_the_sessions_p50_and_max(page: Page) -> None:
    """A spoken reply's stages, each a bar on the turn's time line, as its turn_metrics said;
    then a second turn, and the summary's p50 / max over both."""
    start_session(page, "echo")
    expect(page.get_by_test_id("status")).to_have_attribute("data-state", "live")
    waterfalls = page.get_by_test_id("turn-waterfall")
    expect(waterfalls).to_have_count(0)
    expect(page.get_by_test_id("turn-summary")).to_be_hidden()

    send_text(page, "time this reply", press_enter=True)
    expect(events_of(page, "turn_metrics")).to_have_count(1, timeout=15_000)
    metrics = payload(events_of(page, "turn_metrics"))
    assert metrics["turn"] == 1
    # Sent after the turn: after its audio has played.
    types = [kind for kind, _ in event_items(page)]
    assert types.index("turn_metrics") > types.index("playback_completed")

    first = waterfalls.first
    expect(first).to_have_attribute("data-turn", "1")
    expect(first).to_contain_text("Turn 1 · response")
    drawn = stage_ms(first)
    assert list(drawn) == ["agent", "generation", "synthesis", "send", "speaking"]
    assert drawn == {stage: metrics["metrics"]["stages"][stage] for stage in drawn}
    # The bars follow each other on the turn's time line: speaking starts where send ends.
    bars = {
        row.get_attribute("data-stage"): row.locator(".waterfall__bar").bounding_box()
        for row in first.get_by_test_id("waterfall-stage").all()
    }
    assert all(box is not None and box["width"] > 0 for box in bars.values())
    assert bars["speaking"]["x"] >= bars["send"]["x"] >= bars["synthesis"]["x"]
    assert bars["speaking"]["x"] == pytest.approx(bars["send"]["x"] + bars["send"]["width"], abs=4)

    send_text(page, "and time this one", press_enter=True)
    expect(waterfalls).to_have_count(2, timeout=15_000)
    expect(page.get_by_test_id("timed-turn-count")).to_have_text("2")
    second = stage_ms(waterfalls.last)
    summary = page.get_by_test_id("turn-summary")
    expect(summary).to_be_visible()
    for stage in ("agent", "speaking", "response"):
        values = sorted(
            stages[stage]
            for stages in (
                metrics["metrics"]["stages"],
                payload(events_of(page, "turn_metrics").last)["metrics"]["stages"],
            )
        )
        row = summary.locator(f'[data-testid="summary-stage"][data-stage="{stage}"]')
        expect(row.locator('[data-figure="p50"]')).to_have_text(f"{values[0]} ms")
        expect(row.locator('[data-figure="max"]')).to_have_text(f"{values[1]} ms")
    assert set(second) == set(drawn)
    page.screenshot(path="/tmp/dashboard-waterfall.png", full_page=True)


def test_an_agent_without_its_engine_is_offered_disabled(page: Page) -> None:
    """The server has no OPENAI_API_KEY: the openai agent is shown, cannot be picked."""
    option = page.get_by_test_id("agent-select").locator('option[value="openai"]')
    expect(option).to_be_disabled()
    expect(option).to_contain_text("unavailable: OPENAI_API_KEY is not set")
    expect(page.get_by_test_id("agent-select").locator('option[value="echo"]')).to_be_enabled()
    expect(page.get_by_test_id("agent-select")).to_have_value("echo")
    expect(page.get_by_test_id("start-button")).to_be_enabled()
