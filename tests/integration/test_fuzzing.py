"""Hostile and careless input, generated (hypothesis), against one real daphne process.

Every malformed client message, REST body, Event Grid delivery and ACS media frame gets a
clear answer: an `error` event on a socket that stays open, or a 4xx; never a 5xx, a close
1011/1006 or a traceback in the server's log; and nothing stored changes. Text in any Unicode
(lone surrogates and NULs included) is stored cleaned. Each test keeps one socket open across
all of its examples, so "the connection is kept" is checked example after example.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessions_app.contracts import validator
from sessions_app.redaction import redact_digits
from sessions_app.text import clean_text
from tests.loop_thread import LoopThread
from tests.servers import create_operator_token, migrate, running_daphne, server_env

EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SECRET = "fuzz-secret"
MARKER = "marker"
BAD_INPUT = {"invalid_json", "invalid_event", "unknown_event_type", "payload_too_large"}


@dataclass
class Server:
    url: str
    db: Path
    log: Path
    operator_token: str  # watching a call is an operator's right

    def count(self, sql: str, *args: object) -> int:
        with sqlite3.connect(self.db, timeout=20) as db:
            return db.execute(sql, args).fetchone()[0]

    def rows(self, sql: str, *args: object) -> list[tuple]:
        with sqlite3.connect(self.db, timeout=20) as db:
            return db.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("fuzz")
    env = server_env(
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        STT_ENGINE="none",
        TTS_ENGINE="none",
        AUDIO_AHEAD_BUDGET_MS="100000000",  # decoding is fuzzed here, not pacing
        # ACS configured, answering against a closed port: an answer fails fast (502).
        ACS_CONNECTION_STRING="endpoint=https://127.0.0.1:9/;accesskey=ZnV6eg==",
        ACS_CALLBACK_BASE_URL="https://127.0.0.1:9",
        ACS_WEBHOOK_SECRET=SECRET,
        ACS_JWT_AUDIENCE="fuzz",
        ACS_VERIFY_JWT="0",
        PROVIDER_RETRY_ATTEMPTS="1",
        SESSION_CREATE_RATE="",  # hundreds of creates from one address: the limit is tested apart
    )
    migrate(env)
    token = create_operator_token(env)
    with running_daphne(env, tmp / "daphne.log") as url:
        yield Server(url, tmp / "db.sqlite3", tmp / "daphne.log", token)
    log = (tmp / "daphne.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]


@pytest.fixture(scope="module")
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="module")
def http(loop) -> Iterator[aiohttp.ClientSession]:
    async def open_http() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    session = loop.run(open_http())
    yield session
    loop.run(session.close())


class Socket:
    """One open WebSocket; `answer_to` sends a frame, then a marker, and returns what came
    back before the marker's `transcript_partial`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session_id: str) -> None:
        self.ws = ws
        self.session_id = session_id

    async def events_until_marker(self, watched: aiohttp.ClientWebSocketResponse) -> list[dict]:
        seen = []
        while True:
            message = await watched.receive(timeout=20)
            assert message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), (
                f"socket closed: {message.type} {watched.close_code}"
            )
            if message.type == aiohttp.WSMsgType.BINARY:
                continue
            event = json.loads(message.data)
            validator("stream-event").validate(event)
            if event["type"] == "transcript_partial" and event["text"] == MARKER:
                return seen
            seen.append(event)

    async def answer_to(self, text: str | None = None, data: bytes | None = None) -> list[dict]:
        if data is not None:
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(text)
        await self.ws.send_json({"type": "text", "text": MARKER, "final": False})
        return await self.events_until_marker(self.ws)


async def open_stream(http: aiohttp.ClientSession, url: str) -> Socket:
    async with http.post(f"{url}/api/sessions", json={"agent": "echo"}) as response:
        created = await response.json()
    ws = await http.ws_connect(f"{url.replace('http', 'ws')}{created['ws_path']}", origin=url)
    assert json.loads((await ws.receive(timeout=20)).data)["type"] == "session_started"
    return Socket(ws, created["id"])


@pytest.fixture(scope="module")
def stream(server, loop, http) -> Socket:
    return loop.run(open_stream(http, server.url))


def stored_utterances(server: Server, session_id: str) -> int:
    return server.count(
        "SELECT count(*) FROM sessions_app_utterance WHERE session_id = ?",
        uuid.UUID(session_id).hex,
    )


# --- client messages ---------------------------------------------------------------------

UNSTORABLE = ["\ud800", "\udfff", "\ud83d", "\x00"]  # lone surrogates, NUL
any_char = st.one_of(st.characters(blacklist_categories=()), st.sampled_from(UNSTORABLE))
any_text = st.text(any_char, max_size=40)
not_a_bool = st.one_of(st.integers(), st.text(max_size=5), st.none(), st.floats())
not_a_string = st.one_of(st.integers(), st.none(), st.booleans(), st.lists(st.integers()))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=10,
)


def dumps(value: Any) -> str:
    return json.dumps(value)  # ensure_ascii: lone surrogates travel as \ud800 escapes


json_nasties = st.one_of(
    st.integers(1000, 6000).map(lambda n: "[" * n + "]" * n),
    st.integers(1000, 6000).map(lambda n: "[" * n),
    st.integers(1000, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(4301, 6000).map(lambda n: '{"type": "text", "text": ' + "9" * n + "}"),
    st.integers(4301, 6000).map(lambda n: "1" * n),
    st.just('{"type": "text", "text": "\\ud800", "final": 1}'),
    st.just("\x00"),
    st.integers(16_385, 40_000).map(lambda n: "x" * n),  # over WS_MAX_TEXT_BYTES
)
malformed_objects = st.one_of(
    st.builds(
        lambda kind, extra: dumps({**extra, "type": kind}),
        any_text.filter(lambda k: k not in ("text", "config", "interrupt", "end")),
        st.dictionaries(any_text, json_values, max_size=3),
    ),
    st.builds(lambda t: dumps({"type": "text", "text": t}), not_a_string),
    st.builds(lambda t, f: dumps({"type": "text", "text": t, "final": f}), any_text, not_a_bool),
    st.builds(
        lambda t: dumps({"type": "text", "text": t, "final": True}),
        st.sampled_from(["", " ", "\t\n", "\u3000"]),
    ),
    st.just(dumps({"type": "text", "text": "x" * 4001})),
    st.builds(
        lambda r: dumps({"type": "config", "sample_rate": r}),
        st.one_of(
            st.integers().filter(lambda r: r not in (8000, 16000, 24000, 48000)),
            st.floats(),
            st.text(max_size=5),
            st.booleans(),
        ),
    ),
    json_values.filter(lambda v: not isinstance(v, dict)).map(dumps),
)
not_json = st.text(max_size=200).filter(lambda t: not _is_json(t))


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@EXAMPLES
@given(raw=st.one_of(json_nasties, malformed_objects, not_json))
def test_a_malformed_client_message_gets_an_error_and_changes_nothing(server, loop, stream, raw):
    answer = loop.run(stream.answer_to(raw))
    assert [event["type"] for event in answer] == ["error"], answer
    assert answer[0]["code"] in BAD_INPUT and answer[0]["source"] == "client"
    assert stored_utterances(server, stream.session_id) == 0


@EXAMPLES
@given(size=st.one_of(st.integers(0, 40_000), st.sampled_from([1, 639, 32_000, 32_001, 32_002])))
def test_a_binary_frame_of_any_size_gets_a_clear_answer(server, loop, stream, size):
    answer = loop.run(stream.answer_to(data=bytes(size)))
    if size == 0 or size % 2:
        expected = ["invalid_audio"]
    elif size > 32_000:  # a second at 16 kHz
        expected = ["payload_too_large"]
    else:
        expected = []
    assert [event["code"] for event in answer if event["type"] == "error"] == expected
    assert stored_utterances(server, stream.session_id) == 0


@EXAMPLES
@given(text=st.text(any_char, min_size=1, max_size=200))
def test_text_in_any_unicode_is_stored_cleaned(server, loop, http, text):
    if not json.loads(dumps(text)).strip():
        return
    socket = loop.run(open_stream(http, server.url))
    try:
        answer = loop.run(socket.answer_to(dumps({"type": "text", "text": text, "final": True})))
    finally:
        loop.run(socket.ws.close())
    # JSON joins an escaped surrogate pair into one character: compare with what it reads.
    expected = redact_digits(clean_text(json.loads(dumps(text)).strip()))
    final = next(event for event in answer if event["type"] == "transcript_final")
    assert final["text"] == expected
    assert server.rows(
        "SELECT text FROM sessions_app_utterance WHERE id = ?", uuid.UUID(final["utterance_id"]).hex
    ) == [(expected,)]


# --- REST bodies ---------------------------------------------------------------------------

rest_bodies = st.one_of(
    st.binary(max_size=300),
    json_nasties.map(str.encode),
    st.builds(
        lambda agent, rate, budget: dumps(
            {"agent": agent, "sample_rate": rate, "turn_budget": budget}
        ),
        st.one_of(any_text, not_a_string),
        st.one_of(st.integers(), st.floats(), st.text(max_size=5)),
        st.one_of(st.integers(), not_a_bool),
    ).map(str.encode),
)


@EXAMPLES
@given(body=rest_bodies)
def test_a_create_session_body_gets_201_or_400_and_a_400_stores_nothing(server, loop, http, body):
    before = server.count("SELECT count(*) FROM sessions_app_session")

    async def post() -> tuple[int, dict]:
        async with http.post(f"{server.url}/api/sessions", data=body) as response:
            return response.status, await response.json()

    status, answer = loop.run(post())
    assert status in (201, 400), (status, answer)
    after = server.count("SELECT count(*) FROM sessions_app_session")
    if status == 400:
        validator("error-event").validate(answer)
        assert after == before
    else:
        assert after == before + 1


# --- Event Grid deliveries -----------------------------------------------------------------

nasty_texts = st.one_of(
    any_text.filter(bool),
    st.sampled_from(UNSTORABLE),
    st.integers(90, 600).map(lambda n: "c" * n),
)
nasty_strings = st.one_of(nasty_texts, not_a_string)


@st.composite
def incoming_calls(draw) -> dict:
    if draw(st.booleans()):  # well-formed but for its strings: it reaches the database
        caller = {"rawId": draw(nasty_texts)}
        data = {name: draw(nasty_texts) for name in ("incomingCallContext", "correlationId")}
        data |= {"serverCallId": draw(nasty_texts), "from": caller}
        return {"eventType": "Microsoft.Communication.IncomingCall", "data": data}
    data = {
        "incomingCallContext": draw(nasty_strings),
        "correlationId": draw(nasty_strings),
        "serverCallId": draw(nasty_strings),
        "from": draw(st.one_of(st.fixed_dictionaries({"rawId": nasty_strings}), json_values)),
    }
    for key in draw(st.sets(st.sampled_from(sorted(data)))):
        del data[key]
    kind = draw(
        st.sampled_from(["Microsoft.Communication.IncomingCall", "Microsoft.Other", "", None, 7])
    )
    return {"eventType": kind, "data": data}


event_grid_bodies = st.one_of(
    st.lists(incoming_calls(), min_size=1, max_size=3).map(dumps).map(str.encode),
    st.binary(max_size=200),
    json_nasties.map(str.encode),
    json_values.map(dumps).map(str.encode),
)


@EXAMPLES
@given(body=event_grid_bodies)
def test_an_event_grid_delivery_gets_a_clear_answer(server, loop, http, body):
    before = server.count("SELECT count(*) FROM sessions_app_session WHERE channel = 'acs'")

    async def post() -> tuple[int, dict]:
        url = f"{server.url}/acs/events?secret={SECRET}"
        async with http.post(url, data=body) as response:
            return response.status, await response.json()

    status, answer = loop.run(post())
    # 502: a well-formed call that ACS (here: a closed port) did not let us answer.
    assert status in (200, 400, 502), (status, answer)
    if status == 400:
        validator("error-event").validate(answer)
        assert server.count("SELECT count(*) FROM sessions_app_session WHERE channel = 'acs'") == (
            before
        )
    for correlation_id, caller_id in server.rows(
        "SELECT correlation_id, caller_id FROM sessions_app_session WHERE channel = 'acs'"
    ):
        assert clean_text(correlation_id) == correlation_id
        assert clean_text(caller_id) == caller_id


# --- ACS media frames ----------------------------------------------------------------------


def insert_phone_session(server: Server) -> str:
    session_id = uuid.uuid4()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(server.db, timeout=20) as db:
        (agent_id,) = db.execute("SELECT id FROM agents_app_agent WHERE name = 'echo'").fetchone()
        db.execute(
            "INSERT INTO sessions_app_session (id, status, channel, agent_id, created_at,"
            " end_reason, sample_rate, turn_budget, turn_count, barge_in_count, error_count,"
            " caller_id, call_connection_id, server_call_id, correlation_id, call_state,"
            " process_id) VALUES (?, 'active', 'acs', ?, ?, '', 16000, 20, 0, 0, 0, '', '',"
            " '', ?, 'connected', '')",
            (session_id.hex, agent_id, now, uuid.uuid4().hex),
        )
    return str(session_id)


@dataclass
class Call:
    media: aiohttp.ClientWebSocketResponse
    watcher: aiohttp.ClientWebSocketResponse
    session_id: str

    async def answer_to(self, frame: str) -> list[dict]:
        await self.media.send_str(frame)
        marker = {"kind": "TranscriptionData", "transcriptionData": {"text": MARKER}}
        marker["transcriptionData"]["resultStatus"] = "Intermediate"
        await self.media.send_str(dumps(marker))
        return await Socket(self.watcher, self.session_id).events_until_marker(self.watcher)


@pytest.fixture(scope="module")
def call(server, loop, http) -> Call:
    session_id = insert_phone_session(server)
    ws_base = server.url.replace("http", "ws")

    async def connect() -> Call:
        watcher = await http.ws_connect(
            f"{ws_base}/ws/sessions/{session_id}/watch/",
            origin=server.url,
            headers={"Authorization": f"Bearer {server.operator_token}"},
        )
        media = await http.ws_connect(f"{ws_base}/ws/acs/{session_id}/")
        started = json.loads((await watcher.receive(timeout=20)).data)
        assert started["type"] == "session_started"
        return Call(media, watcher, session_id)

    return loop.run(connect())


def media_frame(kind: str, body: Any) -> str:
    return dumps({"kind": kind, kind[0].lower() + kind[1:]: body})


malformed_media = st.one_of(
    not_json,
    json_nasties,
    json_values.filter(lambda v: not isinstance(v, dict)).map(dumps),
    st.builds(lambda kind: dumps({"kind": kind}), json_values),
    st.builds(
        media_frame,
        st.sampled_from(["AudioMetadata", "AudioData", "DtmfData", "TranscriptionData"]),
        json_values.filter(lambda v: not isinstance(v, dict)),
    ),
    st.builds(lambda data: media_frame("AudioData", {"data": data}), not_a_string),
    st.builds(
        lambda data: media_frame("AudioData", {"data": data}),
        st.sampled_from(["not base64!", "AAA", "AQ==", "A" * 64_000]),  # bad, odd, > 1 s
    ),
    st.builds(
        lambda tone: media_frame("DtmfData", {"data": tone}),
        any_text.filter(lambda t: t not in set("0123456789*#ABCD")),
    ),
    st.builds(
        lambda rate, channels: media_frame(
            "AudioMetadata",
            {"encoding": "PCM", "sampleRate": rate, "channels": channels, "length": 640},
        ),
        st.integers(),
        st.integers().filter(lambda c: c != 1),
    ),
    st.builds(
        lambda status: media_frame("TranscriptionData", {"text": "x", "resultStatus": status}),
        any_text.filter(lambda s: s.lower() not in ("final", "intermediate")),
    ),
)


@EXAMPLES
@given(frame=malformed_media)
def test_a_malformed_media_frame_is_dropped_and_the_call_goes_on(server, loop, call, frame):
    answer = loop.run(call.answer_to(frame))
    assert [event["type"] for event in answer] == ["error"], answer
    assert answer[0]["code"] in BAD_INPUT | {"invalid_audio"}
    assert stored_utterances(server, call.session_id) == 0
    assert server.rows(
        "SELECT status FROM sessions_app_session WHERE id = ?", uuid.UUID(call.session_id).hex
    ) == [("active",)]
