"""ACS's per-call callbacks `POST /acs/callbacks/<session id>`: signed CloudEvents recorded on
the phone session, moving its call state, ending it when the call ends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sessions_app.contracts import validator
from sessions_app.models import CallEvent, Session
from tests.conftest import assert_api_error, make_session
from tests.fakes.acs_events import callback_event
from tests.fakes.acs_server import FakeAcsServer
from tests.fakes.acs_tokens import AcsSigner
from tests.integration.acs.conftest import (
    AUDIENCE,
    AcsMediaClient,
    Watcher,
    make_phone_session,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("configured_layer"),
]

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def cloud_event(kind: str, session: Session, **data: Any) -> dict[str, Any]:
    """A callback event as ACS posts it (CloudEvents schema) for the session's call."""
    connection_id = data.pop("callConnectionId", session.call_connection_id)
    return callback_event(
        kind,
        connection_id,
        operationContext=str(session.id),
        serverCallId=session.server_call_id or "c2VydmVyLWNhbGwtaWQ",
        correlationId=session.correlation_id,
        **data,
    )


def streaming_update(status: str, details: str) -> dict[str, Any]:
    return {
        "mediaStreamingUpdate": {
            "contentType": "Audio",
            "mediaStreamingStatus": status,
            "mediaStreamingStatusDetails": details,
        }
    }


async def post_callbacks(
    client, session_id: Any, body: Any, token: str | None, *, authorization: str | None = None
):
    """POST a callback delivery; `body` is JSON-encoded unless already text."""
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return await client.post(
        f"/acs/callbacks/{session_id}",
        data=data,
        content_type="application/json",
        headers=headers,
    )


async def recorded(session: Session) -> list[CallEvent]:
    return [event async for event in CallEvent.objects.filter(session=session)]


async def reload(session: Session) -> Session:
    return await Session.objects.aget(pk=session.pk)


def snapshot(session: Session) -> dict[str, Any]:
    fields = ["status", "end_reason", "ended_at", "call_state", "call_connection_id"]
    return {name: getattr(session, name) for name in fields}


@pytest.fixture
async def phone_session(acs_settings) -> Session:
    return await make_phone_session(call_state=Session.CallState.ANSWERING)


# --- call state --------------------------------------------------------------------------


async def test_call_connected_is_recorded_and_moves_the_call_state(
    async_client, phone_session, acs_token, fake_acs
):
    response = await post_callbacks(
        async_client, phone_session.id, [cloud_event("CallConnected", phone_session)], acs_token()
    )

    assert response.status_code == 200, response.content
    assert response.json() == {"session_id": str(phone_session.id), "recorded": 1}
    (event,) = await recorded(phone_session)
    assert event.kind == "CallConnected"
    assert (event.result_code, event.result_subcode, event.result_message) == (None, None, "")
    session = await reload(phone_session)
    assert session.call_state == Session.CallState.CONNECTED
    assert session.status == Session.Status.ACTIVE
    assert fake_acs.requests == []


async def test_media_streaming_started_and_stopped_move_the_call_state(
    async_client, phone_session, acs_token
):
    steps = [
        ("CallConnected", {}, Session.CallState.CONNECTED),
        (
            "MediaStreamingStarted",
            streaming_update("mediaStreamingStarted", "subscriptionStarted"),
            Session.CallState.STREAMING,
        ),
        (
            "MediaStreamingStopped",
            streaming_update("mediaStreamingStopped", "subscriptionStopped"),
            Session.CallState.CONNECTED,
        ),
    ]
    for kind, data, state in steps:
        event = cloud_event(
            kind,
            phone_session,
            resultInformation={"code": 200, "subCode": 0, "message": "ok"},
            **data,
        )
        response = await post_callbacks(async_client, phone_session.id, [event], acs_token())
        assert response.status_code == 200, response.content
        assert (await reload(phone_session)).call_state == state, kind

    events = await recorded(phone_session)
    assert [e.kind for e in events] == [kind for kind, _, _ in steps]
    assert all((e.result_code, e.result_subcode) == (200, 0) for e in events)
    assert (await reload(phone_session)).status == Session.Status.ACTIVE


async def test_a_callback_fills_in_a_missing_call_connection_id(
    async_client, acs_settings, acs_token
):
    session = await make_phone_session(call_connection_id="")

    event = cloud_event("CallConnected", session, callConnectionId="411f0b00-52b5-4d50-9a8e")
    response = await post_callbacks(async_client, session.id, [event], acs_token())

    assert response.status_code == 200, response.content
    assert (await reload(session)).call_connection_id == "411f0b00-52b5-4d50-9a8e"


async def test_a_callback_never_replaces_the_call_connection_id(
    async_client, phone_session, acs_token
):
    event = cloud_event("CallConnected", phone_session, callConnectionId="another-connection")
    response = await post_callbacks(async_client, phone_session.id, [event], acs_token())

    assert response.status_code == 200, response.content
    session = await reload(phone_session)
    assert session.call_connection_id == phone_session.call_connection_id


async def test_call_disconnected_ends_the_session(async_client, phone_session, acs_token, fake_acs):
    response = await post_callbacks(
        async_client,
        phone_session.id,
        [cloud_event("CallDisconnected", phone_session)],
        acs_token(),
    )

    assert response.status_code == 200, response.content
    session = await reload(phone_session)
    assert session.status == Session.Status.ENDED
    assert session.end_reason == "call_disconnected"
    assert session.ended_at is not None
    assert session.call_state == Session.CallState.DISCONNECTED
    assert [e.kind for e in await recorded(phone_session)] == ["CallDisconnected"]
    assert fake_acs.requests == []  # the caller hung up: nothing to hang up


async def test_a_second_call_disconnected_is_recorded_and_changes_nothing(
    async_client, phone_session, acs_token
):
    event = cloud_event("CallDisconnected", phone_session)
    await post_callbacks(async_client, phone_session.id, [event], acs_token())
    first = snapshot(await reload(phone_session))

    again = await post_callbacks(async_client, phone_session.id, [event], acs_token())

    assert again.status_code == 200, again.content
    assert again.json() == {"session_id": str(phone_session.id), "recorded": 1}
    assert snapshot(await reload(phone_session)) == first
    assert [e.kind for e in await recorded(phone_session)] == ["CallDisconnected"] * 2


async def test_a_late_streaming_event_does_not_revive_a_disconnected_call(
    async_client, phone_session, acs_token
):
    """ACS posts callbacks independently: MediaStreamingStopped may land after the call's
    CallDisconnected. A disconnected call stays disconnected."""
    for kind, data in [
        ("CallDisconnected", {}),
        ("MediaStreamingStopped", streaming_update("mediaStreamingStopped", "subscriptionStopped")),
    ]:
        event = cloud_event(kind, phone_session, **data)
        response = await post_callbacks(async_client, phone_session.id, [event], acs_token())
        assert response.status_code == 200, response.content

    session = await reload(phone_session)
    assert [e.kind for e in await recorded(phone_session)] == [
        "CallDisconnected",
        "MediaStreamingStopped",
    ]
    assert session.status == Session.Status.ENDED
    assert session.call_state == Session.CallState.DISCONNECTED


async def test_media_streaming_failed_fails_the_session_and_hangs_up(
    async_client, phone_session, acs_token, fake_acs: FakeAcsServer
):
    failure = {
        "code": 400,
        "subCode": 8581,
        "message": "Action failed, transport url is not reachable.",
    }
    event = cloud_event(
        "MediaStreamingFailed",
        phone_session,
        resultInformation=failure,
        **streaming_update("mediaStreamingFailed", "streamConnectionUnsuccessful"),
    )

    response = await post_callbacks(async_client, phone_session.id, [event], acs_token())

    assert response.status_code == 200, response.content
    (stored,) = await recorded(phone_session)
    assert stored.kind == "MediaStreamingFailed"
    assert (stored.result_code, stored.result_subcode) == (400, 8581)
    assert stored.result_message == failure["message"]
    session = await reload(phone_session)
    assert session.status == Session.Status.FAILED
    assert session.end_reason == "media_streaming_failed"
    assert session.ended_at is not None
    # Hung up by us: the call is over; its failure stays in the status, reason and events.
    assert session.call_state == Session.CallState.DISCONNECTED
    (hang_up,) = fake_acs.requests_to(":terminate", method="POST")
    assert hang_up.path == f"/calling/callConnections/{phone_session.call_connection_id}:terminate"
    assert hang_up.headers["Authorization"].startswith("HMAC-SHA256 ")


async def test_media_streaming_failed_is_recorded_even_when_the_hang_up_fails(
    async_client, phone_session, acs_token, fake_acs
):
    fake_acs.fail_next(500, times=10)
    event = cloud_event(
        "MediaStreamingFailed",
        phone_session,
        resultInformation={"code": 400, "subCode": 8581, "message": "not reachable"},
    )

    response = await post_callbacks(async_client, phone_session.id, [event], acs_token())

    assert response.status_code == 200, response.content
    assert [e.kind for e in await recorded(phone_session)] == ["MediaStreamingFailed"]
    assert (await reload(phone_session)).status == Session.Status.FAILED
    assert len(fake_acs.requests_to(":terminate")) == 2  # the hang-up's short policy


async def test_a_result_message_is_stored_redacted(async_client, phone_session, acs_token):
    event = cloud_event(
        "PlayFailed",
        phone_session,
        resultInformation={"code": 400, "subCode": 8535, "message": "card 4111111111111111 bad"},
    )

    await post_callbacks(async_client, phone_session.id, [event], acs_token())

    (stored,) = await recorded(phone_session)
    assert stored.kind == "PlayFailed"
    assert stored.result_message == "card [redacted] bad"
    assert (await reload(phone_session)).call_state == Session.CallState.ANSWERING


async def test_a_batch_is_recorded_whole_and_in_order(async_client, phone_session, acs_token):
    kinds = [
        "CallConnected",
        "MediaStreamingStarted",
        "ParticipantsUpdated",
        "MediaStreamingStopped",
    ]
    batch = [cloud_event(kind, phone_session) for kind in kinds]

    response = await post_callbacks(async_client, phone_session.id, batch, acs_token())

    assert response.status_code == 200, response.content
    assert response.json()["recorded"] == len(kinds)
    assert [e.kind for e in await recorded(phone_session)] == kinds
    assert (await reload(phone_session)).call_state == Session.CallState.CONNECTED


# --- refusals ----------------------------------------------------------------------------


def other_signer_token() -> str:
    return AcsSigner().token(AUDIENCE)


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(lambda signer: None, id="missing"),
        pytest.param(lambda signer: "Bearer ", id="empty-bearer"),
        pytest.param(lambda signer: f"Basic {signer.token(AUDIENCE)}", id="not-bearer"),
        pytest.param(
            lambda signer: f"Bearer {signer.token(AUDIENCE, issued_ago_s=600, lifetime_s=300)}",
            id="expired",
        ),
        pytest.param(
            lambda signer: f"Bearer {signer.token('another-resource-id')}", id="wrong-audience"
        ),
        pytest.param(
            lambda signer: f"Bearer {signer.token(AUDIENCE, issuer='https://evil.example')}",
            id="wrong-issuer",
        ),
        pytest.param(lambda signer: f"Bearer {other_signer_token()}", id="unknown-key"),
        pytest.param(lambda signer: "Bearer not.a.jwt", id="garbage"),
    ],
)
async def test_a_callback_not_signed_by_acs_is_refused(
    async_client, phone_session, acs_signer, fake_acs, authorization
):
    header = authorization(acs_signer)
    before = snapshot(await reload(phone_session))

    response = await post_callbacks(
        async_client,
        phone_session.id,
        [cloud_event("CallDisconnected", phone_session)],
        None,
        authorization=header,
    )

    body = assert_api_error(response, 401, "unauthorized")
    token = (header or "").partition(" ")[2].strip()
    assert not token or token not in body["message"]  # never echoed
    assert await recorded(phone_session) == []
    assert snapshot(await reload(phone_session)) == before
    assert fake_acs.requests == []


async def test_without_verification_an_unsigned_callback_is_accepted(
    async_client, phone_session, acs_settings
):
    acs_settings.ACS_VERIFY_JWT = False

    response = await post_callbacks(
        async_client, phone_session.id, [cloud_event("CallConnected", phone_session)], None
    )

    assert response.status_code == 200, response.content
    assert [e.kind for e in await recorded(phone_session)] == ["CallConnected"]


async def test_not_configured_answers_503(async_client, phone_session, acs_settings, acs_token):
    acs_settings.ACS_CONNECTION_STRING = ""

    response = await post_callbacks(
        async_client, phone_session.id, [cloud_event("CallConnected", phone_session)], acs_token()
    )

    body = assert_api_error(response, 503, "not_configured")
    assert "ACS_CONNECTION_STRING" in body["message"]
    assert await recorded(phone_session) == []


async def test_get_is_not_allowed(async_client, phone_session):
    response = await async_client.get(f"/acs/callbacks/{phone_session.id}")

    assert_api_error(response, 405, "method_not_allowed")


@pytest.mark.parametrize("target", ["unknown", "web", "not-a-uuid"])
async def test_a_callback_for_no_phone_session_is_404(
    async_client, acs_settings, acs_token, target
):
    phone = await make_phone_session()
    if target == "unknown":
        session_id = UNKNOWN_ID
    elif target == "web":
        session_id = str((await make_session("echo")).id)
    else:
        session_id = "not-a-uuid"

    response = await post_callbacks(
        async_client, session_id, [cloud_event("CallDisconnected", phone)], acs_token()
    )

    assert_api_error(response, 404, "session_not_found")
    assert await CallEvent.objects.acount() == 0
    if target == "web":
        web = await Session.objects.aget(pk=session_id)
        assert (web.status, web.call_state) == (Session.Status.ACTIVE, "")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{oops", "invalid_json"),
        ("", "invalid_json"),
        ("[]", "invalid_event"),
        ('{"type": "Microsoft.Communication.CallConnected", "data": {}}', "invalid_event"),
        ('[{"type": "Microsoft.Communication.CallConnected"}]', "invalid_event"),
        ('[{"type": "Microsoft.Communication.CallConnected", "data": []}]', "invalid_event"),
        ('[{"data": {}}]', "unknown_event_type"),
    ],
)
async def test_a_malformed_body_is_refused(async_client, phone_session, acs_token, body, code):
    response = await post_callbacks(async_client, phone_session.id, body, acs_token())

    assert_api_error(response, 400, code)
    assert await recorded(phone_session) == []


async def test_an_event_outside_the_namespace_refuses_the_batch(
    async_client, phone_session, acs_token, fake_acs
):
    foreign = cloud_event("CallDisconnected", phone_session)
    foreign["type"] = "Microsoft.EventGrid.SubscriptionValidationEvent"
    before = snapshot(await reload(phone_session))

    response = await post_callbacks(
        async_client,
        phone_session.id,
        [cloud_event("CallDisconnected", phone_session), foreign],
        acs_token(),
    )

    assert_api_error(response, 400, "unknown_event_type")
    assert await recorded(phone_session) == []
    assert snapshot(await reload(phone_session)) == before


# --- the session detail ------------------------------------------------------------------


async def test_the_session_detail_of_a_phone_session_lists_its_call_events(
    async_client, operator_client, phone_session, acs_token
):
    batch = [
        cloud_event("CallConnected", phone_session),
        cloud_event(
            "MediaStreamingFailed",
            phone_session,
            resultInformation={"code": 400, "subCode": 8581, "message": "not reachable"},
        ),
    ]
    await post_callbacks(async_client, phone_session.id, batch, acs_token())

    response = await operator_client.get(f"/api/sessions/{phone_session.id}")

    assert response.status_code == 200, response.content
    detail = response.json()
    validator("session").validate(detail)
    assert detail["channel"] == "acs"
    assert detail["status"] == "failed"
    assert detail["end_reason"] == "media_streaming_failed"
    assert detail["call_state"] == "disconnected"  # hung up after the failure
    assert detail["caller_id"] == phone_session.caller_id
    assert detail["call_connection_id"] == phone_session.call_connection_id
    assert detail["correlation_id"] == phone_session.correlation_id
    assert [
        (e["kind"], e["result_code"], e["result_subcode"], e["result_message"])
        for e in detail["call_events"]
    ] == [("CallConnected", None, None, ""), ("MediaStreamingFailed", 400, 8581, "not reachable")]


async def test_a_web_session_detail_has_no_call_events(operator_client, acs_settings):
    web = await make_session("echo")

    detail = (await operator_client.get(f"/api/sessions/{web.id}")).json()

    validator("session").validate(detail)
    assert "call_events" not in detail


# --- a live call -------------------------------------------------------------------------


async def media_socket_closed(media: AcsMediaClient) -> dict[str, Any]:
    """Wait for the server to close the media socket (skipping any frames it sent first)."""
    while True:
        message = await media.communicator.receive_output(timeout=5)
        if message["type"] == "websocket.close":
            return message
        assert message["type"] == "websocket.send", message


async def test_call_disconnected_ends_the_live_media_socket(
    async_client, acs_settings, acs_token, fake_acs
):
    session = await make_phone_session()
    watcher = Watcher(session.id)
    media = AcsMediaClient(session.id, acs_token())
    try:
        await watcher.connect()
        await media.connect()
        await watcher.receive_until("session_started")  # the media consumer is live

        response = await post_callbacks(
            async_client, session.id, [cloud_event("CallDisconnected", session)], acs_token()
        )
        assert response.status_code == 200, response.content

        closed = await media_socket_closed(media)
        assert closed.get("code", 1000) == 1000
        ended = (await watcher.receive_until("session_ended"))[-1]
        assert ended["reason"] == "call_disconnected"
    finally:
        await media.close()
        await watcher.close()

    stored = await reload(session)
    assert stored.status == Session.Status.ENDED
    assert stored.end_reason == "call_disconnected"
    assert stored.call_state == Session.CallState.DISCONNECTED
    assert [e.kind for e in await recorded(session)] == ["CallDisconnected"]
    assert fake_acs.requests_to(":terminate") == []
    assert fake_acs.requests == []


async def test_media_streaming_failed_on_a_live_call_hangs_up_once(
    async_client, acs_settings, acs_token, fake_acs
):
    """The callback hangs up the failed call; the media consumer it tells to end must not
    hang up the same call a second time."""
    session = await make_phone_session()
    watcher = Watcher(session.id)
    media = AcsMediaClient(session.id, acs_token())
    try:
        await watcher.connect()
        await media.connect()
        await watcher.receive_until("session_started")
        event = cloud_event(
            "MediaStreamingFailed",
            session,
            resultInformation={"code": 400, "subCode": 8581, "message": "not reachable"},
        )

        response = await post_callbacks(async_client, session.id, [event], acs_token())

        assert response.status_code == 200, response.content
        await media_socket_closed(media)
        ended = (await watcher.receive_until("session_ended"))[-1]
        assert ended["reason"] == "media_streaming_failed"
    finally:
        await media.close()  # waits for the consumer to finish: its hang-up, if any, is done
        await watcher.close()

    stored = await reload(session)
    assert (stored.status, stored.end_reason) == (Session.Status.FAILED, "media_streaming_failed")
    terminates = fake_acs.requests_to(":terminate", method="POST")
    assert [r.path for r in terminates] == [
        f"/calling/callConnections/{session.call_connection_id}:terminate"
    ]
