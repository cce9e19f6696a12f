"""Two daphne processes behind one Redis and one PostgreSQL, as a deployment runs them.

A session's WebSocket lives on process A; the operator's REST calls go to process B. The
interrupt and the end travel through the Redis channel layer and stop A's playback.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psycopg
import pytest

from tests.conftest import bearer, require_service
from tests.servers import create_operator_token, migrate, running_daphne, server_env

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

LONG_SAY = "please tell me a very long story about the sea and the ships"
ADMIN_DB = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str, str, dict[str, str]]]:
    """Two daphnes on one database and Redis; and an operator's Authorization header."""
    require_service("Redis", "127.0.0.1", 6379)
    require_service("PostgreSQL", "127.0.0.1", 5432)
    database = f"voice_two_processes_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DB, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}")
    env = server_env(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{database}",
        REDIS_URL="redis://127.0.0.1:6379/1",
        TTS_ENGINE="silent",
        STT_ENGINE="none",
        STORAGE_RETRY_DEADLINE_S="1",
    )
    try:
        migrate(env)
        operator = bearer(create_operator_token(env))
        with (
            tempfile.TemporaryDirectory(prefix="two-processes-") as logs,
            running_daphne(env, Path(logs) / "a.log") as a,
            running_daphne(env, Path(logs) / "b.log") as b,
        ):
            yield a, b, database, operator
    finally:
        with psycopg.connect(ADMIN_DB, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


class Stream:
    """The caller's side of a WebSocket: JSON events and binary audio frames."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket

    async def send(self, **message: object) -> None:
        await self.socket.send_json(message)

    async def next(self, timeout: float = 5) -> dict | bytes | None:
        message = await self.socket.receive(timeout=timeout)
        if message.type == aiohttp.WSMsgType.BINARY:
            return message.data
        if message.type == aiohttp.WSMsgType.TEXT:
            return json.loads(message.data)
        return None  # closed

    async def until(self, event_type: str) -> list[dict | bytes]:
        seen = []
        while True:
            item = await self.next()
            assert item is not None, f"socket closed before {event_type}"
            seen.append(item)
            if isinstance(item, dict) and item["type"] == event_type:
                return seen


async def test_operator_on_b_interrupts_and_ends_a_session_held_by_a(servers):
    a, b, _, operator = servers
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{b}/api/sessions", json={"agent": "echo"}) as response:
            created = await response.json()
        socket = await http.ws_connect(f"{a.replace('http', 'ws')}{created['ws_path']}", origin=a)
        stream = Stream(socket)
        assert (await stream.next())["type"] == "session_started"

        await stream.send(type="text", text=LONG_SAY, final=True)
        await stream.until("playback_started")
        for _ in range(10):
            assert isinstance(await stream.next(), bytes)

        async with http.post(
            f"{b}/api/sessions/{created['id']}/interrupt", headers=operator
        ) as response:
            assert response.status == 202
        seen = await stream.until("barge_in")
        barge_in = seen[-1]
        assert barge_in["source"] == "operator"
        assert barge_in["heard_text"] and len(barge_in["heard_text"]) < len(LONG_SAY)
        assert (await stream.next())["type"] == "turn_metrics"  # the cut turn's, last
        with pytest.raises(TimeoutError):
            await stream.next(timeout=0.3)  # no audio after the barge-in

        await stream.send(type="text", text="thanks", final=True)
        await stream.until("playback_completed")

        async with http.post(f"{b}/api/sessions/{created['id']}/end", headers=operator) as response:
            assert response.status == 200
        ended = await stream.until("session_ended")
        assert ended[-1]["reason"] == "operator_ended"
        assert await stream.next() is None, "A closes the socket"

        async with http.get(f"{b}/api/sessions/{created['id']}", headers=operator) as response:
            stored = await response.json()
    assert (stored["status"], stored["end_reason"]) == ("ended", "operator_ended")
    assert [(u["role"], u["interrupted"]) for u in stored["utterances"]] == [
        ("user", False),
        ("agent", True),
        ("user", False),
        ("agent", False),
    ]
    assert stored["utterances"][1]["heard_text"] == barge_in["heard_text"]
    assert stored["barge_in_count"] == 1


async def open_session(http: aiohttp.ClientSession, server: str) -> tuple[dict, Stream]:
    async with http.post(f"{server}/api/sessions", json={"agent": "echo"}) as response:
        created = await response.json()
    url = f"{server.replace('http', 'ws')}{created['ws_path']}"
    stream = Stream(await http.ws_connect(url, origin=server))
    assert (await stream.next())["type"] == "session_started"
    return created, stream


def drop_connections(database: str) -> None:
    """Terminate every server process of the servers' database: all their connections break."""
    with psycopg.connect(ADMIN_DB, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            [database],
        )


async def test_writes_ride_out_a_dropped_database_connection(servers):
    a, _, database, _ = servers
    async with aiohttp.ClientSession() as http:
        created, stream = await open_session(http, a)
        await stream.send(type="text", text="before", final=True)
        await stream.until("playback_completed")

        drop_connections(database)
        await stream.send(type="text", text="after", final=True)
        seen = await stream.until("playback_completed")
        assert not [e for e in seen if isinstance(e, dict) and e["type"] == "error"]

        async with http.get(
            f"{a}/api/sessions/{created['id']}", headers=bearer(created["token"])
        ) as response:
            stored = await response.json()
    texts = [u["text"] for u in stored["utterances"]]
    assert texts == ["before", "You said: before", "after", "You said: after"]


async def test_a_longer_database_outage_tells_the_caller_what_was_not_stored(servers):
    a, _, database, _ = servers
    async with aiohttp.ClientSession() as http:
        created, stream = await open_session(http, a)
        with psycopg.connect(ADMIN_DB, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {database} WITH ALLOW_CONNECTIONS false")
            try:
                drop_connections(database)
                await stream.send(type="text", text="lost words", final=True)
                error = await stream.until("error")
            finally:
                admin.execute(f"ALTER DATABASE {database} WITH ALLOW_CONNECTIONS true")
        failure = error[-1]
        assert (failure["code"], failure["source"], failure["retryable"]) == (
            "storage_failed",
            "storage",
            True,
        )
        assert "user utterance #1 was not stored" in failure["message"]

        await stream.send(type="text", text="said again", final=True)
        seen = await stream.until("playback_completed")
        final = next(e for e in seen if isinstance(e, dict) and e["type"] == "transcript_final")
        assert final["utterance_seq"] == 1

        async with http.get(
            f"{a}/api/sessions/{created['id']}", headers=bearer(created["token"])
        ) as response:
            stored = await response.json()
    assert [u["text"] for u in stored["utterances"]] == ["said again", "You said: said again"]
