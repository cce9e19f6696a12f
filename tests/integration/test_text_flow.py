"""The basic text conversation through the real ASGI application."""

from __future__ import annotations

import pytest

from agents_app.models import Task
from sessions_app.models import Session, Utterance
from tests.unit.test_turn_metrics import assert_in_order

pytestmark = pytest.mark.django_db(transaction=True)


async def test_basic_flow_partial_final_reply_and_end(stream):
    client = await stream()

    await client.send(type="text", text="hello the", final=False)
    partial = await client.receive()
    assert partial == {**partial, "type": "transcript_partial", "text": "hello the"}

    events = await client.reply_to("hello there")
    types = [event["type"] for event in events]
    assert types[0] == "transcript_final"
    assert events[0]["text"] == "hello there"
    assert set(types[1:-1]) == {"agent_response"}
    deltas = "".join(event["delta"] for event in events[1:-1])
    assert deltas == events[-1]["text"] == "You said: hello there"
    # A typed turn's metrics, right after its reply: no audio stages.
    timed = client.events[-1]
    assert timed["type"] == "turn_metrics"
    assert (timed["turn"], timed["utterance_id"]) == (1, events[-1]["utterance_id"])
    assert_in_order(timed["metrics"])
    assert list(timed["metrics"]["marks"]) == ["transcript_final", "first_token", "reply_done"]
    assert set(timed["metrics"]["stages"]) == {"agent", "generation", "response"}

    await client.send(type="end")
    ended = await client.receive()
    assert ended["type"] == "session_ended" and ended["reason"] == "client_ended"

    session = await Session.objects.aget(pk=client.session.id)
    assert session.status == Session.Status.ENDED
    assert session.turn_count == 1
    texts = [(u.role, u.seq, u.text) async for u in session.utterances.all()]
    assert texts == [("user", 1, "hello there"), ("agent", 2, "You said: hello there")]
    agent = await session.utterances.aget(role="agent")
    assert agent.turn_metrics == timed["metrics"]
    task = await Task.objects.aget(session=session)
    assert task.status == Task.Status.SUCCEEDED
    assert task.output == {"text": "You said: hello there"}
    assert await Utterance.objects.filter(session=session, interrupted=True).acount() == 0
