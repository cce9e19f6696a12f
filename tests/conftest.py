"""Shared fixtures: sessions with tokens, a WebSocket client, and the real-service gate."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import AsyncClient

from agents_app.models import Agent, Task
from agents_app.seed import seed_agents
from agents_app.strategies import STRATEGIES
from agents_app.strategies.openai import close_shared_clients
from operators_app.models import ApiToken
from operators_app.permissions import grant_operator_permissions
from sessions_app.contracts import validator
from sessions_app.models import Session
from sessions_app.rate_limit import session_creation
from sessions_app.tokens import issue_token
from voiceproject import channel_layers as layer_configs
from voiceproject.asgi import application

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a service is not running here; with REQUIRE_SERVICES=1 (CI), fail instead."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        reason = f"{name} is not running on {host}:{port}"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}, and REQUIRE_SERVICES=1 says it must be")
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def text_only_engines(settings) -> None:
    """Most tests hold typed conversations; voice tests choose their engines themselves."""
    settings.TTS_ENGINE = "none"
    settings.STT_ENGINE = "none"
    # A fixed end of turn: 600 ms of silence. Turn-taking tests choose the model themselves.
    settings.TURN_MODEL = "none"
    settings.VAD_HANGOVER_MS = 600
    settings.GRACEFUL_SHUTDOWN = False  # a SIGTERM handler belongs to servers, not to pytest


@pytest.fixture(autouse=True)
def audio_at_any_speed(settings) -> None:
    """Tests feed recorded speech as fast as they can; the real-time budget has tests of its
    own (test_audio_overrun.py), which set it back."""
    settings.AUDIO_AHEAD_BUDGET_MS = 600_000


@pytest.fixture(autouse=True)
def seeded_agents(request) -> None:
    """Transactional tests flush the database, seeded agents included: put them back."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    seed_agents(Agent)


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    """Each test starts with full buckets: the limit is per process, tests share one."""
    session_creation.reset()


def make_operator(username: str = "operator", *, permissions: bool = True) -> Any:
    """A staff user; with `permissions`, one who may view, start, end and interrupt sessions."""
    user = get_user_model().objects.create_user(username, password="operator-password")
    user.is_staff = True
    user.save()
    if permissions:
        grant_operator_permissions(user)
    return user


def operator_token(username: str = "script-operator") -> str:
    """A new API token of an operator (created the first time), for sockets and scripts."""
    user = get_user_model().objects.filter(username=username).first() or make_operator(username)
    return ApiToken.objects.issue(user, "tests")[1]


@pytest.fixture
async def operator(db) -> Any:
    return await sync_to_async(make_operator)()


@pytest.fixture
async def operator_client(operator) -> AsyncClient:
    """A client logged in as an operator (CSRF checks off, as Django's test client does)."""
    client = AsyncClient()
    await client.aforce_login(operator)
    return client


@pytest.fixture
async def api_token(operator) -> str:
    """A raw API token of the operator."""
    _, raw = await sync_to_async(ApiToken.objects.issue)(operator, "tests")
    return raw


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(autouse=True)
def shared_openai_clients_closed(request) -> None:
    """Each async test's event loop ends with it: the OpenAI clients its sessions shared are
    closed first, as a stopping server closes them, not reported unclosed when pytest exits.
    (Only async tests: browser tests run Playwright's own loop, where no other may start.)"""
    if inspect.iscoroutinefunction(request.function):
        request.getfixturevalue("close_shared_openai_clients")


@pytest.fixture
async def close_shared_openai_clients() -> AsyncIterator[None]:
    yield
    await close_shared_clients()


async def reset_channel_layers() -> None:
    """Drop cached layers (closing Redis pools) so the next use reads the settings anew."""
    layer = channel_layers.backends.get("default")
    if layer is not None and hasattr(layer, "flush"):
        await layer.flush()
    if layer is not None and hasattr(layer, "close_pools"):
        await layer.close_pools()
    channel_layers.backends.clear()


@pytest.fixture
async def configured_layer(settings):
    """The layer the settings name: in-memory, or Redis when REDIS_URL is set (CI)."""
    if settings.REDIS_URL:
        require_service("Redis", "127.0.0.1", 6379)
    await reset_channel_layers()
    yield
    await reset_channel_layers()


@pytest.fixture
async def in_memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": layer_configs.in_memory_layer()}
    await reset_channel_layers()
    yield
    await reset_channel_layers()


@pytest.fixture
async def redis_layer(settings):
    require_service("Redis", "127.0.0.1", 6379)
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = {"default": layer_configs.redis_layer(REDIS_URL, prefix=prefix)}
    await reset_channel_layers()
    yield
    await reset_channel_layers()


def assert_api_error(response, status: int, code: str, source: str = "api") -> dict[str, Any]:
    """The response is a REST error in the error-event shape, with this status and code."""
    assert response.status_code == status, response.content
    body = response.json()
    validator("error-event").validate(body)
    assert body["code"] == code
    assert body["source"] == source
    return body


async def latest_task(session_id: uuid.UUID) -> Task:
    return await Task.objects.filter(session_id=session_id).order_by("-created_at").afirst()


async def make_session(agent: str = "echo", **fields: Any) -> Session:
    agent_row = await Agent.objects.aget(name=agent)
    return await Session.objects.acreate(agent=agent_row, **fields)


class StreamClient:
    """A WebSocket client for one session that checks every event against the contract."""

    def __init__(self, session_id: uuid.UUID, token: str | None) -> None:
        query = f"?token={token}" if token is not None else ""
        self.communicator = WebsocketCommunicator(
            application,
            f"/ws/sessions/{session_id}/{query}",
            headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")],
        )
        self.events: list[dict[str, Any]] = []
        self.audio: list[bytes] = []

    async def connect(self) -> None:
        connected, _ = await self.communicator.connect()
        assert connected

    async def send(self, **message: Any) -> None:
        await self.communicator.send_json_to(message)

    async def send_raw(self, text: str | None = None, data: bytes | None = None) -> None:
        await self.communicator.send_to(text_data=text, bytes_data=data)

    async def receive_any(self, timeout: float = 3) -> dict[str, Any] | bytes:
        """The next event (checked against the contract and for seq gaps), or an audio frame."""
        message = await self.communicator.receive_output(timeout=timeout)
        assert message["type"] == "websocket.send", f"socket closed: {message}"
        if message.get("bytes") is not None:
            self.audio.append(message["bytes"])
            return message["bytes"]
        event = json.loads(message["text"])
        validator("stream-event").validate(event)
        expected_seq = self.events[-1]["seq"] + 1 if self.events else 1
        assert event["seq"] == expected_seq, f"seq gap: {event['seq']} after {expected_seq - 1}"
        self.events.append(event)
        return event

    async def receive(self, timeout: float = 3) -> dict[str, Any]:
        event = await self.receive_any(timeout)
        assert isinstance(event, dict), "an audio frame came where an event was expected"
        return event

    async def receive_until(self, event_type: str, timeout: float = 5) -> list[dict[str, Any]]:
        """Events up to and including the first of `event_type`."""
        seen = []
        while True:
            event = await self.receive(timeout)
            seen.append(event)
            if event["type"] == event_type:
                return seen

    async def receive_turn_metrics(self, timeout: float = 3) -> dict[str, Any]:
        """The next event, which must be a turn's `turn_metrics`: its metrics."""
        event = await self.receive(timeout)
        assert event["type"] == "turn_metrics", event
        return event["metrics"]

    async def reply_to(self, text: str) -> list[dict[str, Any]]:
        """Say `text` as a final utterance and collect events up to the agent's final response.
        A reply that was not spoken ends with its `turn_metrics`, which is read too (it is in
        `events`), so that what the test receives next is what follows the turn."""
        await self.send(type="text", text=text, final=True)
        seen = []
        while True:
            event = await self.receive()
            seen.append(event)
            if event["type"] == "agent_response" and event["final"]:
                if not any(earlier["type"] == "playback_started" for earlier in seen):
                    await self.receive_turn_metrics()
                return seen
            if event["type"] == "error" and event["source"] == "agent":
                return seen

    async def close(self) -> None:
        if not self.communicator.future.done():  # a test may have ended the application
            await self.communicator.disconnect()


@pytest.fixture
async def stream_factory() -> AsyncIterator[Any]:
    """Open connected streams on whatever channel layer the settings name."""
    clients: list[StreamClient] = []

    async def open_stream(agent: str = "echo", **fields: Any) -> StreamClient:
        session = await make_session(agent, **fields)
        client = StreamClient(session.id, issue_token(session.id))
        client.session = session
        await client.connect()
        started = await client.receive()
        assert started["type"] == "session_started"
        clients.append(client)
        return client

    yield open_stream
    for client in clients:
        await client.close()


class GatedStrategy:
    """A test agent that says its first words, then waits until the test opens the gate."""

    gate: asyncio.Event

    def __init__(self, spec: Any) -> None:
        self.spec = spec

    async def stream_reply(self, messages: list[dict[str, str]], tools: Any):
        yield "Let me think "
        yield "about that. "
        await GatedStrategy.gate.wait()
        yield "Here is the rest of a long answer."

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def gated_agent(monkeypatch) -> Agent:
    """An agent named "gated" whose replies stall mid-stream, so a barge-in can cut them."""
    GatedStrategy.gate = asyncio.Event()
    monkeypatch.setitem(STRATEGIES, "gated", GatedStrategy)
    return await Agent.objects.acreate(name="gated", strategy="gated", instructions="Be brief.")


@pytest.fixture
def stream(configured_layer, stream_factory):
    """Open a connected stream for a new session: `client = await stream(agent="rules")`."""
    return stream_factory
