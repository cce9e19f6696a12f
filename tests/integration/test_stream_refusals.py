"""Who may open a session's stream: token, session state and origin are checked at connect."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from channels.testing import WebsocketCommunicator

from sessions_app.contracts import validator
from sessions_app.tokens import issue_token
from tests.conftest import StreamClient, make_session
from voiceproject.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("configured_layer")]


async def assert_refused(client: StreamClient, code: str, close_code: int) -> None:
    connected, _ = await client.communicator.connect()
    assert connected, "refusals are sent after accept, so the client can read why"
    event = json.loads(await client.communicator.receive_from())
    validator("stream-event").validate(event)
    assert (event["type"], event["code"], event["source"]) == ("error", code, "client")
    assert event["retryable"] is False
    closed = await client.communicator.receive_output()
    assert closed == {"type": "websocket.close", "code": close_code}


async def test_missing_token_is_refused():
    session = await make_session()
    await assert_refused(StreamClient(session.id, None), "unauthorized", 4401)


async def test_forged_token_is_refused():
    session = await make_session()
    await assert_refused(StreamClient(session.id, "not-a-token"), "unauthorized", 4401)


async def test_token_of_another_session_is_refused():
    session, other = await make_session(), await make_session()
    await assert_refused(StreamClient(session.id, issue_token(other.id)), "unauthorized", 4401)


async def test_expired_token_is_refused(settings, monkeypatch):
    session = await make_session()
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", lambda: 1_000_000.0)
        old_token = issue_token(session.id)
    await assert_refused(StreamClient(session.id, old_token), "unauthorized", 4401)


async def test_unknown_session_is_refused():
    missing = uuid.uuid4()
    await assert_refused(StreamClient(missing, issue_token(missing)), "session_not_found", 4404)


async def test_ended_session_is_refused():
    session = await make_session(status="ended", end_reason="client_ended")
    await assert_refused(StreamClient(session.id, issue_token(session.id)), "session_ended", 4409)


async def test_foreign_origin_is_rejected_before_accept():
    session = await make_session()
    communicator = WebsocketCommunicator(
        application,
        f"/ws/sessions/{session.id}/?token={issue_token(session.id)}",
        headers=[(b"origin", b"https://evil.example"), (b"host", b"localhost")],
    )
    connected, _ = await communicator.connect()
    assert not connected
