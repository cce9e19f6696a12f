"""Redaction end to end, and the context window's turn budget, seen through a live session."""

from __future__ import annotations

import logging

import pytest

from agents_app.models import Agent, Task
from sessions_app.models import Utterance
from tests.conftest import latest_task

pytestmark = pytest.mark.django_db(transaction=True)

CARD = "4111-1111-1111-1111"


async def test_card_number_is_redacted_everywhere(stream, caplog):
    caplog.set_level(logging.DEBUG)
    client = await stream()

    await client.send(type="text", text="my card is 4111 1111", final=False)
    partial = await client.receive()
    assert partial["text"] == "my card is ", "a digit run still being spoken is withheld"
    events = await client.reply_to(f"my card is {CARD} thanks")

    sent = [partial, *events]
    assert all("4111" not in str(event) for event in sent), sent
    assert events[0]["text"] == "my card is [redacted] thanks"
    assert events[-1]["text"] == "You said: my card is [redacted] thanks"
    stored = [u.text async for u in Utterance.objects.filter(session_id=client.session.id)]
    assert stored == ["my card is [redacted] thanks", "You said: my card is [redacted] thanks"]
    task = await Task.objects.aget(session_id=client.session.id)
    assert task.input["messages"] == [{"role": "user", "content": "my card is [redacted] thanks"}]
    assert "4111" not in caplog.text


async def test_partial_shows_numbers_once_they_are_complete(stream):
    client = await stream()
    await client.send(type="text", text="at 10:30 on 2024-11-24 I paid 42 dollars", final=False)
    partial = await client.receive()
    assert partial["text"] == "at 10:30 on 2024-11-24 I paid 42 dollars"


async def test_tool_arguments_are_stored_redacted(stream):
    client = await stream(agent="rules")
    events = await client.reply_to("status of order 5555 4444 3333 2222 please")

    assert all("5555" not in str(event) for event in events)
    # The order number was redacted before the agent saw it, so it asks for one.
    assert events[-1]["text"] == "Sure. What is the order number?"


async def test_rules_agent_calls_a_tool_and_reports_it(stream):
    client = await stream(agent="rules")
    events = await client.reply_to("what is the status of order 12345")

    tool_events = [event for event in events if event["type"] == "tool_invocation"]
    assert len(tool_events) == 1
    assert tool_events[0]["tool"] == "order_status"
    assert tool_events[0]["arguments"] == {"order_id": "12345"}
    assert tool_events[0]["status"] == "succeeded"
    assert events[-1]["text"].startswith("Order 12345 is ")


async def test_context_keeps_instructions_and_drops_oldest_turns(stream):
    await Agent.objects.acreate(name="brief-echo", strategy="echo", instructions="Be brief.")
    client = await stream(agent="brief-echo", turn_budget=2)

    await client.reply_to("one")
    await client.reply_to("two")
    third = await client.reply_to("three")

    truncated = [event for event in third if event["type"] == "context_truncated"]
    assert truncated == [{**truncated[0], "dropped_turns": 1, "kept_turns": 2, "turn_budget": 2}]
    assert [event["type"] for event in third[:2]] == ["transcript_final", "context_truncated"]
    last_task = await latest_task(client.session.id)
    assert last_task.input["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "You said: two"},
        {"role": "user", "content": "three"},
    ]
    # Truncation only shortens what the agent sees; the transcript keeps every turn.
    assert await Utterance.objects.filter(session_id=client.session.id).acount() == 6
