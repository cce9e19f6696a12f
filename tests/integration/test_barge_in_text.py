"""Barge-in in text mode: each trigger stops the reply, and the context keeps what was heard."""

from __future__ import annotations

import pytest

from agents_app.models import Task
from sessions_app.models import Session, Utterance
from tests.conftest import GatedStrategy, latest_task

pytestmark = pytest.mark.django_db(transaction=True)

HEARD = "Let me think about that. "


async def start_gated_reply(client) -> None:
    await client.send(type="text", text="tell me a long story", final=True)
    await client.receive_until("transcript_final")
    deltas = [await client.receive(), await client.receive()]
    assert "".join(event["delta"] for event in deltas) == HEARD


async def assert_barge_in_recorded(
    client, barge_in: dict, source: str, metrics: dict | None = None
) -> None:
    """`barge_in` cut the reply, then came the turn's metrics (`metrics` if already read)."""
    assert barge_in["type"] == "barge_in"
    assert barge_in["source"] == source
    assert barge_in["heard_text"] == HEARD
    metrics = metrics or await client.receive_turn_metrics()
    assert metrics["cut_by"] == source
    assert [(b["outcome"], b["source"]) for b in metrics["barge_ins"]] == [("confirmed", source)]
    assert await client.communicator.receive_nothing(timeout=0.2)
    agent = await Utterance.objects.aget(session_id=client.session.id, role="agent")
    assert agent.interrupted is True
    assert agent.heard_text == HEARD
    task = await Task.objects.aget(session_id=client.session.id)
    assert task.status == Task.Status.CANCELLED
    session = await Session.objects.aget(pk=client.session.id)
    assert (session.barge_in_count, session.turn_count, session.interrupted_turn_count) == (1, 1, 1)


async def test_interrupt_event_stops_the_reply(stream, gated_agent):
    client = await stream(agent="gated")
    await start_gated_reply(client)

    await client.send(type="interrupt")

    await assert_barge_in_recorded(client, await client.receive(), "interrupt")


async def test_non_final_text_barges_in_before_its_partial(stream, gated_agent):
    client = await stream(agent="gated")
    await start_gated_reply(client)

    await client.send(type="text", text="wait", final=False)

    barge_in = await client.receive()
    metrics = await client.receive_turn_metrics()
    partial = await client.receive()
    assert partial["type"] == "transcript_partial" and partial["text"] == "wait"
    await assert_barge_in_recorded(client, barge_in, "text", metrics)


async def test_next_turn_context_holds_only_what_was_heard(stream, gated_agent):
    client = await stream(agent="gated")
    await start_gated_reply(client)
    await client.send(type="interrupt")
    await client.receive_until("barge_in")

    GatedStrategy.gate.set()
    await client.send(type="text", text="and then?", final=True)
    await client.receive_until("agent_response")

    second = await latest_task(client.session.id)
    assert second.input["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "tell me a long story"},
        {"role": "assistant", "content": HEARD},
        {"role": "user", "content": "and then?"},
    ]


async def test_interrupt_with_nothing_playing_changes_nothing(stream):
    client = await stream()
    await client.reply_to("hello")

    await client.send(type="interrupt")

    assert await client.communicator.receive_nothing(timeout=0.2)
    session = await Session.objects.aget(pk=client.session.id)
    assert session.barge_in_count == 0


async def test_ending_mid_reply_stores_what_was_heard(stream, gated_agent):
    client = await stream(agent="gated")
    await start_gated_reply(client)

    await client.send(type="end")

    assert (await client.receive_turn_metrics())["cut_by"] == "session_end"
    ended = await client.receive()
    assert ended["type"] == "session_ended"
    agent = await Utterance.objects.aget(session_id=client.session.id, role="agent")
    assert (agent.interrupted, agent.heard_text) == (True, HEARD)
