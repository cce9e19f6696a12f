"""The REST API through Django's async client: health, sessions, operator control, errors."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from channels.layers import channel_layers, get_channel_layer
from django.test import AsyncClient

from agents_app.models import Task
from sessions_app.contracts import validator
from sessions_app.models import Session, group_name
from tests.conftest import StreamClient, assert_api_error, make_session

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("in_memory_layer"),
]

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


async def create_session(client: AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/sessions", body, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


# --- /health -----------------------------------------------------------------------------


async def test_health_is_ok_when_database_and_channel_layer_answer(async_client):
    response = await async_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "channel_layer": "ok"},
    }


@pytest.fixture
async def unreachable_redis_layer(settings):
    """A Redis channel layer pointing at a closed loopback port: every call is refused."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    channel_layers.backends.clear()
    yield
    layer = channel_layers.backends.get("default")
    if layer is not None:
        await layer.close_pools()
    channel_layers.backends.clear()


async def test_health_names_the_channel_layer_when_it_is_down(
    async_client, unreachable_redis_layer
):
    response = await async_client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["channel_layer"].startswith("down: ")


# --- POST /api/sessions ------------------------------------------------------------------


async def test_create_session_answers_with_token_and_websocket_address(async_client, settings):
    settings.AGENT_STRATEGY = "echo"
    body = await create_session(async_client)

    validator("session").validate(body)
    session_id = body["id"]
    assert body["status"] == "active"
    assert body["channel"] == "web"
    assert body["agent"]["name"] == "echo"
    assert body["agent"]["strategy"] == "echo"
    assert body["sample_rate"] == 16000
    assert body["turn_budget"] == settings.CONTEXT_TURN_BUDGET
    assert body["ended_at"] is None
    assert body["token"]
    assert body["ws_path"] == f"/ws/sessions/{session_id}/?token={body['token']}"
    assert body["ws_url"] == f"ws://testserver{body['ws_path']}"
    assert "utterances" not in body and "tasks" not in body

    stored = await Session.objects.select_related("agent").aget(pk=session_id)
    assert stored.agent.name == "echo"
    assert stored.status == Session.Status.ACTIVE


async def test_create_session_with_named_agent_and_options(async_client):
    body = await create_session(async_client, agent="rules", sample_rate=8000, turn_budget=3)

    validator("session").validate(body)
    assert body["agent"]["name"] == "rules"
    assert body["agent"]["strategy"] == "rules"
    assert body["agent"]["tools"] == ["order_status", "account_balance"]
    assert body["sample_rate"] == 8000
    assert body["turn_budget"] == 3
    stored = await Session.objects.aget(pk=body["id"])
    assert (stored.sample_rate, stored.turn_budget) == (8000, 3)


async def test_create_session_rejects_a_body_that_is_not_json(async_client):
    response = await async_client.post(
        "/api/sessions", "{not json", content_type="application/json"
    )
    assert_api_error(response, 400, "invalid_json")
    assert await Session.objects.acount() == 0


@pytest.mark.parametrize("raw", ["[1, 2]", '"rules"', "42", "null"])
async def test_create_session_rejects_a_body_that_is_not_an_object(async_client, raw):
    response = await async_client.post("/api/sessions", raw, content_type="application/json")
    assert_api_error(response, 400, "invalid_event")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sample_rate": 44100}, "sample_rate"),
        ({"sample_rate": "16000"}, "sample_rate"),
        ({"sample_rate": True}, "sample_rate"),
        ({"sample_rate": None}, "sample_rate"),
        ({"sample_rate": 16000.0}, "sample_rate"),
        ({"turn_budget": 0}, "turn_budget"),
        ({"turn_budget": -3}, "turn_budget"),
        ({"turn_budget": "5"}, "turn_budget"),
        ({"turn_budget": 2.5}, "turn_budget"),
        ({"turn_budget": True}, "turn_budget"),
        ({"turn_budget": 10**12}, "turn_budget"),
        ({"agent": ""}, "agent"),
        ({"agent": 7}, "agent"),
    ],
)
async def test_create_session_rejects_bad_fields(async_client, body, field):
    response = await async_client.post("/api/sessions", body, content_type="application/json")
    error = assert_api_error(response, 400, "invalid_event")
    assert f"'{field}'" in error["message"]
    assert await Session.objects.acount() == 0


async def test_create_session_with_unknown_agent_is_agent_not_found(async_client):
    response = await async_client.post(
        "/api/sessions", {"agent": "nobody"}, content_type="application/json"
    )
    error = assert_api_error(response, 400, "agent_not_found")
    assert "nobody" in error["message"]
    assert error["retryable"] is False


# --- GET /api/agents: who can answer here -----------------------------------------------


async def test_agents_say_whether_their_engine_is_configured(async_client, settings):
    settings.OPENAI_API_KEY = ""
    body = (await async_client.get("/api/agents")).json()
    validator("agent-list").validate(body)
    listed = {agent["strategy"]: agent for agent in body["agents"]}
    assert listed["echo"]["available"] is True and listed["echo"]["unavailable_reason"] is None
    assert listed["openai"]["available"] is False
    assert "OPENAI_API_KEY" in listed["openai"]["unavailable_reason"]

    settings.OPENAI_API_KEY = "sk-test"
    body = (await async_client.get("/api/agents")).json()
    assert all(agent["available"] for agent in body["agents"])
    assert "sk-test" not in str(body)


async def test_a_session_with_an_unconfigured_agent_is_refused(async_client, settings):
    settings.OPENAI_API_KEY = ""
    response = await async_client.post(
        "/api/sessions", {"agent": "openai"}, content_type="application/json"
    )
    error = assert_api_error(response, 503, "not_configured")
    assert "OPENAI_API_KEY" in error["message"]
    assert await Session.objects.acount() == 0


# --- GET /api/sessions and /api/sessions/<id> --------------------------------------------


async def test_list_shows_recent_sessions_without_tokens(async_client, operator_client):
    first = await create_session(async_client)
    second = await create_session(async_client, agent="rules")

    response = await operator_client.get("/api/sessions")
    assert response.status_code == 200
    listed = response.json()["sessions"]
    for item in listed:
        validator("session").validate(item)
        assert "token" not in item
    # Newest first.
    assert [item["id"] for item in listed] == [second["id"], first["id"]]


async def test_detail_after_a_conversation_with_a_tool_call(operator_client, stream):
    live = await stream(agent="rules")
    said = "what is the status of order 12345"
    events = await live.reply_to(said)
    tool_event = next(event for event in events if event["type"] == "tool_invocation")
    reply = events[-1]
    assert reply["type"] == "agent_response" and reply["final"] is True

    response = await operator_client.get(f"/api/sessions/{live.session.id}")
    assert response.status_code == 200
    body = response.json()
    validator("session").validate(body)
    assert body["id"] == str(live.session.id)
    assert body["agent"]["name"] == "rules"

    utterances = [(u["role"], u["seq"], u["text"]) for u in body["utterances"]]
    assert utterances == [("user", 1, said), ("agent", 2, reply["text"])]
    assert reply["text"].startswith("Order 12345 is ")
    # The reply carries its turn's metrics as the turn_metrics event gave them; the caller's
    # utterance none.
    sent = next(event for event in live.events if event["type"] == "turn_metrics")
    assert [u["turn_metrics"] for u in body["utterances"]] == [None, sent["metrics"]]

    [task] = body["tasks"]
    assert task["status"] == Task.Status.SUCCEEDED
    assert task["utterance_id"] == body["utterances"][0]["id"]
    assert task["input"]["agent"] == "rules"
    assert task["input"]["messages"][-1] == {"role": "user", "content": said}
    assert task["output"] == {"text": reply["text"]}
    [call] = task["tool_invocations"]
    assert call["tool"] == "order_status"
    assert call["status"] == "succeeded"
    assert call["arguments"] == {"order_id": "12345"} == tool_event["arguments"]
    assert call["result"] == tool_event["result"]
    assert call["result"]["order_id"] == "12345"


async def test_detail_of_unknown_session_is_not_found(operator_client):
    response = await operator_client.get(f"/api/sessions/{UNKNOWN_ID}")
    error = assert_api_error(response, 404, "session_not_found")
    assert UNKNOWN_ID in error["message"]


async def test_detail_of_malformed_session_id_is_an_api_error(operator_client):
    response = await operator_client.get("/api/sessions/not-a-uuid")
    assert_api_error(response, 404, "session_not_found")


# --- methods -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("delete", "/api/sessions", "GET, POST"),
        ("put", "/api/sessions", "GET, POST"),
        ("post", "/health", "GET"),
        ("post", "/api/agents", "GET"),
        ("post", "/api/sessions/{id}", "GET"),
        ("get", "/api/sessions/{id}/end", "POST"),
        ("get", "/api/sessions/{id}/interrupt", "POST"),
    ],
)
async def test_wrong_method_is_405_with_allow_header(async_client, method, path, allow):
    session = await make_session()
    response = await getattr(async_client, method)(path.format(id=session.id))
    assert_api_error(response, 405, "method_not_allowed")
    assert response["Allow"] == allow


# --- operator control --------------------------------------------------------------------


async def listen_to_group(session_id: uuid.UUID) -> str:
    """A channel in the session's group, standing in for the consumer that owns the session."""
    layer = get_channel_layer()
    channel = await layer.new_channel("test.")
    await layer.group_add(group_name(session_id), channel)
    return channel


async def next_message(channel: str) -> dict[str, Any]:
    return await asyncio.wait_for(get_channel_layer().receive(channel), 2)


async def test_end_marks_the_session_ended_and_tells_its_group(operator_client):
    session = await make_session()
    channel = await listen_to_group(session.id)

    response = await operator_client.post(f"/api/sessions/{session.id}/end")
    assert response.status_code == 200
    body = response.json()
    validator("session").validate(body)
    assert body["status"] == "ended"
    assert body["end_reason"] == "operator_ended"
    assert body["ended_at"] is not None
    assert await next_message(channel) == {"type": "session.end", "reason": "operator_ended"}

    again = await operator_client.post(f"/api/sessions/{session.id}/end")
    assert_api_error(again, 409, "session_ended")
    stored = await Session.objects.aget(pk=session.id)
    assert (stored.status, stored.end_reason) == (Session.Status.ENDED, "operator_ended")


async def test_end_closes_a_live_stream(operator_client, stream):
    live = await stream()
    response = await operator_client.post(f"/api/sessions/{live.session.id}/end")
    assert response.status_code == 200
    ended = await live.receive()
    assert ended["type"] == "session_ended"
    assert ended["reason"] == "operator_ended"


async def test_end_of_unknown_session_is_not_found(operator_client):
    response = await operator_client.post(f"/api/sessions/{UNKNOWN_ID}/end")
    assert_api_error(response, 404, "session_not_found")


async def test_interrupt_an_active_session_sends_a_cancel_to_its_group(operator_client):
    session = await make_session()
    channel = await listen_to_group(session.id)

    response = await operator_client.post(f"/api/sessions/{session.id}/interrupt")
    assert response.status_code == 202
    assert response.json() == {"session_id": str(session.id), "interrupt": "sent"}
    assert await next_message(channel) == {"type": "playback.cancel", "source": "operator"}


async def test_interrupt_an_ended_session_is_conflict(operator_client):
    session = await make_session(status=Session.Status.ENDED, end_reason="client_ended")
    response = await operator_client.post(f"/api/sessions/{session.id}/interrupt")
    assert_api_error(response, 409, "session_ended")


async def test_interrupt_unknown_session_is_not_found(operator_client):
    response = await operator_client.post(f"/api/sessions/{UNKNOWN_ID}/interrupt")
    assert_api_error(response, 404, "session_not_found")


# --- the token opens the stream ----------------------------------------------------------


async def test_token_from_create_session_opens_the_websocket(async_client):
    body = await create_session(async_client, agent="rules", sample_rate=24000, turn_budget=4)
    live = StreamClient(uuid.UUID(body["id"]), body["token"])
    await live.connect()
    try:
        started = await live.receive()
    finally:
        await live.close()
    assert started["type"] == "session_started"
    assert started["session_id"] == body["id"]
    assert started["agent"] == {"name": "rules", "strategy": "rules"}
    assert (started["sample_rate"], started["turn_budget"]) == (24000, 4)


async def test_token_of_another_session_is_refused(async_client):
    mine = await create_session(async_client)
    other = await create_session(async_client)
    live = StreamClient(uuid.UUID(other["id"]), mine["token"])
    await live.connect()
    try:
        refused = await live.receive()
        closed = await live.communicator.receive_output(timeout=2)
    finally:
        await live.close()
    assert refused["type"] == "error"
    assert refused["code"] == "unauthorized"
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_a_database_at_its_connection_limit_is_a_503_to_retry_not_a_crash(
    async_client, monkeypatch
):
    """PostgreSQL refuses connections past `max_connections` (a burst of sessions opened at
    once over several processes did it): the client reads why and when to try again."""
    from django.db import OperationalError

    from agents_app.models import Agent

    async def refused(*args: object, **kwargs: object) -> None:
        raise OperationalError("FATAL:  sorry, too many clients already")

    monkeypatch.setattr(type(Agent.objects), "afor_session", refused)
    before = await Session.objects.acount()

    response = await async_client.post(
        "/api/sessions", {"agent": "echo"}, content_type="application/json"
    )

    body = assert_api_error(response, 503, "storage_failed")
    assert body["retryable"] is True
    assert "connection limit" in body["message"]
    assert response["Retry-After"] == "1"
    assert await Session.objects.acount() == before
