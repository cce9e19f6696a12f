"""Refusals and limits as a real daphne sends them: close codes (daphne sends only 1000 and
3000-4999, which channels' test communicator cannot show), oversized frames, unrouted paths,
concurrent creates on SQLite, and a client that stops reading (under uvicorn too)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.servers import migrate, running_daphne, running_daphne_process, server_env

BACKLOG_LIMIT = 256 * 1024
CLOSE_4408_FRAME = b"\x88\x02" + (4408).to_bytes(2, "big")  # a server's close, no reason


def refusals_env(tmp: Path) -> dict[str, str]:
    return server_env(
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        STT_ENGINE="none",
        TTS_ENGINE="silent",
        PLAYBACK_LEAD_MS="3600000",  # a reply's audio leaves at once: a backlog builds fast
        OUTBOUND_BACKLOG_MAX_BYTES=str(BACKLOG_LIMIT),
        ACS_CONNECTION_STRING="endpoint=https://127.0.0.1:9/;accesskey=ZnV6eg==",
        ACS_CALLBACK_BASE_URL="https://127.0.0.1:9",
        ACS_WEBHOOK_SECRET="secret",
        ACS_JWT_AUDIENCE="audience",
        SESSION_CREATE_RATE="",  # 200 creates from one address: the limit has its own tests
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("refusals")
    env = refusals_env(tmp)
    migrate(env)
    with running_daphne(env, tmp / "daphne.log") as url:
        yield url
    log = (tmp / "daphne.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]


@pytest.fixture(scope="module")
def uvicorn_server(tmp_path_factory) -> Iterator[str]:
    """The same application under uvicorn, which README recommends for production."""
    tmp = tmp_path_factory.mktemp("refusals-uvicorn")
    env = refusals_env(tmp)
    migrate(env)
    with running_daphne_process(env, tmp / "uvicorn.log", server_name="uvicorn") as process:
        yield process.url
    log = (tmp / "uvicorn.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


async def create(http: aiohttp.ClientSession, server: str, **body: object) -> dict:
    async with http.post(f"{server}/api/sessions", json={"agent": "echo", **body}) as response:
        assert response.status == 201
        return await response.json()


def bearer(created: dict) -> dict[str, str]:
    """A caller's own session token, as the header that lets them read and end it."""
    return {"Authorization": f"Bearer {created['token']}"}


async def refusal(http, server: str, path: str, **kwargs) -> tuple[list[dict], int | None]:
    """The events a socket got before it closed, and its close code."""
    ws = await http.ws_connect(f"{server.replace('http', 'ws')}{path}", **kwargs)
    events = []
    while (message := await ws.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
        events.append(json.loads(message.data))
    return events, ws.close_code


async def test_browser_socket_refusals_close_with_their_documented_codes(server, http):
    live, ended = await create(http, server), await create(http, server)
    async with http.post(
        f"{server}/api/sessions/{ended['id']}/end", headers=bearer(ended)
    ) as response:
        assert response.status == 200
    other = await create(http, server)
    cases = [
        (f"/ws/sessions/{live['id']}/", 4401, "unauthorized"),
        (f"/ws/sessions/{live['id']}/?token={other['token']}", 4401, "unauthorized"),
        (f"/ws/sessions/{live['id']}/?token=garbage", 4401, "unauthorized"),
        (f"/ws/sessions/{uuid.uuid4()}/?token={live['token']}", 4401, "unauthorized"),
        (ended["ws_path"], 4409, "session_ended"),
    ]
    for path, code, error in cases:
        events, closed = await refusal(http, server, path, origin=server)
        assert closed == code, path
        assert [event["code"] for event in events] == [error], path


async def test_a_second_socket_gets_4409_and_the_first_keeps_talking(server, http):
    created = await create(http, server)
    url = f"{server.replace('http', 'ws')}{created['ws_path']}"
    first = await http.ws_connect(url, origin=server)
    assert json.loads((await first.receive(timeout=10)).data)["type"] == "session_started"

    events, closed = await refusal(http, server, created["ws_path"], origin=server)
    assert (closed, [e["code"] for e in events]) == (4409, ["already_connected"])

    await first.send_json({"type": "text", "text": "still here", "final": True})
    final = json.loads((await first.receive(timeout=10)).data)
    assert (final["type"], final["text"]) == ("transcript_final", "still here")
    await first.close()


@pytest.mark.parametrize(
    "path", ["/ws/sessions/not-a-uuid/", "/ws/elsewhere/", "/anything", "/ws/acs/not-a-uuid/"]
)
async def test_an_unrouted_socket_path_closes_with_4404(server, http, path):
    assert await refusal(http, server, path, origin=server) == ([], 4404)


async def test_the_media_socket_without_an_acs_token_closes_with_4401(server, http):
    path = f"/ws/acs/{uuid.uuid4()}/"
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
        assert await refusal(http, server, path, headers=headers) == ([], 4401)


@pytest.mark.parametrize("path", ["/static/..%2f..%2fmanage.py", "/static/..%2fsettings.py", "/x"])
async def test_unrouted_and_escaping_http_paths_are_404(server, http, path):
    async with http.get(aiohttp.client.URL(f"{server}{path}", encoded=True)) as response:
        assert response.status == 404


async def test_a_frame_over_daphnes_limit_closes_with_1009_and_ours_get_an_error(server, http):
    created = await create(http, server)
    url = f"{server.replace('http', 'ws')}{created['ws_path']}"
    ws = await http.ws_connect(url, origin=server)
    await ws.receive(timeout=10)  # session_started
    await ws.send_bytes(bytes(200_000))  # over our 1 s of audio: an error, the socket stays
    error = json.loads((await ws.receive(timeout=10)).data)
    assert error["code"] == "payload_too_large"
    await ws.send_bytes(bytes(2 * 1024 * 1024))  # over daphne's 1 MiB: a clean close
    while (await ws.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
        pass
    assert ws.close_code == 1009


async def test_200_concurrent_creates_on_sqlite_all_succeed(server, http):
    async def post() -> int:
        async with http.post(f"{server}/api/sessions", json={}) as response:
            return response.status

    statuses = await asyncio.gather(*(post() for _ in range(200)))
    assert sorted(set(statuses)) == [201]


def masked_text_frame(payload: bytes) -> bytes:
    """A client's WebSocket text frame (clients must mask)."""
    mask = os.urandom(4)
    size = len(payload)
    length = bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + size.to_bytes(2, "big")
    return bytes([0x81]) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("asgi_server", ["server", "uvicorn_server"])
async def test_a_client_that_stops_reading_is_ended_with_client_not_reading(
    request, asgi_server, http
):
    """Under either server: past OUTBOUND_BACKLOG_MAX_BYTES unread, the session ends as
    `client_not_reading` (daphne queues close 4408 behind the backlog; uvicorn, whose sends
    would wait for the client, drops the connection)."""
    server = request.getfixturevalue(asgi_server)
    created = await create(http, server, sample_rate=48000)
    address = urlsplit(server)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # little room in the kernel
    sock.connect((address.hostname, address.port))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {created['ws_path']} HTTP/1.1\r\nHost: {address.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {server}\r\n\r\n".encode()
    )
    assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
    long_text = " ".join(["words"] * 600)  # ~3 minutes of speech: ~17 MB at 48 kHz
    message = {"type": "text", "text": long_text, "final": True}
    writer.write(masked_text_frame(json.dumps(message).encode()))
    await writer.drain()
    try:  # and never read again
        for _ in range(300):
            async with http.get(
                f"{server}/api/sessions/{created['id']}", headers=bearer(created)
            ) as response:
                stored = await response.json()
            if stored["status"] != "active":
                break
            await asyncio.sleep(0.2)
        assert (stored["status"], stored["end_reason"]) == ("ended", "client_not_reading")
        if asgi_server == "uvicorn_server":  # dropped: no close frame after the backlog
            tail = b""
            with contextlib.suppress(ConnectionResetError):
                while chunk := await asyncio.wait_for(reader.read(1 << 20), timeout=30):
                    tail = (tail + chunk)[-4:]
            assert tail != CLOSE_4408_FRAME, "the socket was held until the backlog was read"
    finally:
        writer.close()


@pytest.mark.parametrize("asgi_server", ["server", "uvicorn_server"])
async def test_a_browsers_offer_of_per_message_deflate_is_declined(request, asgi_server, http):
    """Browsers offer deflate; accepted, every 20 ms audio frame would be compressed and
    inflated (uvicorn accepts it unless told not to: tests/servers.py tells it)."""
    server = request.getfixturevalue(asgi_server)
    created = await create(http, server)
    url = f"{server.replace('http', 'ws')}{created['ws_path']}"
    ws = await http.ws_connect(url, origin=server, compress=15)
    try:
        assert json.loads((await ws.receive(timeout=10)).data)["type"] == "session_started"
        assert ws.compress == 0  # no extension agreed
    finally:
        await ws.close()


async def test_ending_a_session_with_the_microphone_on_is_quiet(server, http):
    created = await create(http, server)
    ws = await http.ws_connect(f"{server.replace('http', 'ws')}{created['ws_path']}", origin=server)
    await ws.receive(timeout=10)  # session_started

    async def microphone() -> None:
        with_silence = bytes(640)
        while not ws.closed:
            await ws.send_bytes(with_silence)
            await asyncio.sleep(0.02)

    talking = asyncio.create_task(microphone())
    await asyncio.sleep(0.3)
    await ws.send_json({"type": "end"})
    seen = []
    while (message := await ws.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
        seen.append(json.loads(message.data)["type"])
    talking.cancel()
    assert seen[-1] == "session_ended" and ws.close_code == 1000
    # The module's server log is checked for tracebacks when it stops.
