"""The Event Grid webhook `POST /acs/events`: the subscription handshake, and an IncomingCall
answered through the real Call Automation SDK against the fake ACS."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from sessions_app.models import Session
from sessions_app.redaction import REDACTED
from tests.conftest import assert_api_error
from tests.fakes.acs_events import CALLER, SERVER_CALL_ID, incoming_call, validation_event
from tests.fakes.acs_server import ANSWER, FakeAcsServer
from tests.integration.acs.conftest import CALLBACK_BASE, SECRET

pytestmark = pytest.mark.django_db(transaction=True)


async def deliver(
    client,
    body: Any,
    *,
    secret: str | None = SECRET,
    event_type: str = "Notification",
):
    """POST a delivery as Event Grid does; `body` is JSON-encoded unless already text."""
    url = "/acs/events" if secret is None else f"/acs/events?secret={secret}"
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return await client.post(
        url, data=data, content_type="application/json", headers={"aeg-event-type": event_type}
    )


async def session_count() -> int:
    return await Session.objects.acount()


# --- the handshake -----------------------------------------------------------------------


async def test_subscription_validation_echoes_the_code(async_client, acs_settings, fake_acs):
    response = await deliver(
        async_client,
        [validation_event("512d38b6-c7b8-40c8-89fe-f46f9e9622b6")],
        event_type="SubscriptionValidation",
    )

    assert response.status_code == 200
    assert response.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert await session_count() == 0
    assert fake_acs.requests == []


# --- IncomingCall ------------------------------------------------------------------------


async def test_incoming_call_creates_a_session_and_answers_with_media_streaming(
    async_client, acs_settings, fake_acs: FakeAcsServer
):
    event = incoming_call()
    response = await deliver(async_client, [event])

    assert response.status_code == 200, response.content
    (session_id,) = response.json()["sessions"]
    assert response.json() == {"sessions": [session_id]}

    session = await Session.objects.aget()
    assert str(session.id) == session_id
    assert session.channel == Session.Channel.ACS
    assert session.status == Session.Status.ACTIVE
    assert session.caller_id == CALLER
    assert session.server_call_id == SERVER_CALL_ID
    assert session.correlation_id == event["data"]["correlationId"]
    assert session.call_state == Session.CallState.ANSWERING
    assert session.sample_rate == 16000
    assert session.ended_at is None
    (answer,) = fake_acs.answers
    assert session.call_connection_id == answer["callConnectionId"]

    (request,) = fake_acs.requests_to(ANSWER, method="POST")
    assert request.headers["Authorization"].startswith("HMAC-SHA256 ")
    assert request.body is not None
    assert request.body["incomingCallContext"] == event["data"]["incomingCallContext"]
    assert request.body["callbackUri"] == f"{CALLBACK_BASE}/acs/callbacks/{session_id}"
    assert request.body["operationContext"] == session_id
    assert request.body["mediaStreamingOptions"] == {
        "transportUrl": f"wss://voice.example.test/ws/acs/{session_id}/",
        "transportType": "websocket",
        "contentType": "audio",
        "audioChannelType": "mixed",
        "startMediaStreaming": True,
        "enableBidirectional": True,
        "audioFormat": "pcm16KMono",
        "enableDtmfTones": True,
    }


async def test_pcm24k_answers_at_24_khz(async_client, acs_settings, fake_acs):
    acs_settings.ACS_AUDIO_FORMAT = "pcm24k"

    response = await deliver(async_client, [incoming_call()])

    assert response.status_code == 200, response.content
    session = await Session.objects.aget()
    assert session.sample_rate == 24000
    (request,) = fake_acs.requests_to(ANSWER)
    assert request.body["mediaStreamingOptions"]["audioFormat"] == "pcm24KMono"


async def test_a_long_caller_number_is_stored_redacted(async_client, acs_settings, fake_acs):
    response = await deliver(async_client, [incoming_call(raw_id="4:+4930123456789")])

    assert response.status_code == 200, response.content
    session = await Session.objects.aget()
    assert session.caller_id == f"4:+{REDACTED}"
    assert "30123456789" not in session.caller_id


async def test_a_redelivered_incoming_call_is_answered_once(async_client, acs_settings, fake_acs):
    event = incoming_call()

    first = await deliver(async_client, [event])
    again = await deliver(async_client, [event])

    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert await session_count() == 1
    assert len(fake_acs.requests_to(ANSWER)) == 1


async def test_concurrent_redeliveries_of_one_call_answer_it_once(
    async_client, acs_settings, fake_acs
):
    """Event Grid redelivers when a delivery is slow (30 s), so the first may still be in
    flight; a second server process may take the copy. The call must be answered once."""
    event = incoming_call()

    first, again = await asyncio.gather(
        deliver(async_client, [event]), deliver(async_client, [event])
    )

    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert await session_count() == 1
    assert len(fake_acs.requests_to(ANSWER)) == 1


async def test_two_calls_in_one_delivery_get_a_session_each(async_client, acs_settings, fake_acs):
    calls = [incoming_call(), incoming_call(raw_id="4:+14255550199")]

    response = await deliver(async_client, calls)

    assert response.status_code == 200, response.content
    ids = response.json()["sessions"]
    assert len(set(ids)) == 2
    stored = {str(s.id): s async for s in Session.objects.all()}
    assert set(stored) == set(ids)
    assert [stored[i].correlation_id for i in ids] == [c["data"]["correlationId"] for c in calls]
    contexts = [r.body["incomingCallContext"] for r in fake_acs.requests_to(ANSWER)]
    assert contexts == [c["data"]["incomingCallContext"] for c in calls]


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, "", "wrong-secret", SECRET[:-1]])
async def test_a_wrong_or_missing_secret_is_refused(async_client, acs_settings, fake_acs, secret):
    response = await deliver(async_client, [incoming_call()], secret=secret)

    body = assert_api_error(response, 401, "unauthorized")
    assert body["retryable"] is False
    assert await session_count() == 0
    assert fake_acs.requests == []


async def test_the_handshake_needs_the_secret_too(async_client, acs_settings, fake_acs):
    response = await deliver(
        async_client,
        [validation_event("code")],
        secret="wrong",
        event_type="SubscriptionValidation",
    )

    assert_api_error(response, 401, "unauthorized")


@pytest.mark.parametrize(
    "blank",
    [
        ["ACS_CONNECTION_STRING"],
        ["ACS_WEBHOOK_SECRET"],
        ["ACS_JWT_AUDIENCE"],
        ["ACS_CALLBACK_BASE_URL"],
        ["ACS_CONNECTION_STRING", "ACS_JWT_AUDIENCE"],
    ],
)
async def test_not_configured_answers_503_naming_the_missing_settings(
    async_client, acs_settings, fake_acs, blank
):
    for name in blank:
        setattr(acs_settings, name, "")

    response = await deliver(async_client, [incoming_call()])

    body = assert_api_error(response, 503, "not_configured")
    for name in blank:
        assert name in body["message"]
    others = {"ACS_CONNECTION_STRING", "ACS_WEBHOOK_SECRET", "ACS_JWT_AUDIENCE"} - set(blank)
    assert not any(name in body["message"] for name in others)
    assert await session_count() == 0
    assert fake_acs.requests == []


async def test_no_audience_is_needed_when_verification_is_off(async_client, acs_settings, fake_acs):
    acs_settings.ACS_VERIFY_JWT = False
    acs_settings.ACS_JWT_AUDIENCE = ""

    response = await deliver(async_client, [incoming_call()])

    assert response.status_code == 200, response.content
    assert await session_count() == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        ("", "invalid_json"),
        ("[]", "invalid_event"),
        ('"IncomingCall"', "invalid_event"),
        ("[42]", "invalid_event"),
        ('[{"eventType": "Microsoft.Communication.IncomingCall"}]', "invalid_event"),
    ],
)
async def test_a_malformed_body_is_refused(async_client, acs_settings, fake_acs, body, code):
    response = await deliver(async_client, body)

    assert_api_error(response, 400, code)
    assert await session_count() == 0
    assert fake_acs.requests == []


async def test_an_object_instead_of_an_array_is_refused(async_client, acs_settings, fake_acs):
    response = await deliver(async_client, incoming_call())

    assert_api_error(response, 400, "invalid_event")
    assert await session_count() == 0
    assert fake_acs.requests == []


@pytest.mark.parametrize("missing", ["incomingCallContext", "correlationId", "from"])
async def test_an_incoming_call_missing_a_field_is_refused(
    async_client, acs_settings, fake_acs, missing
):
    event = incoming_call()
    del event["data"][missing]

    response = await deliver(async_client, [event])

    body = assert_api_error(response, 400, "invalid_event")
    assert missing in body["message"]
    assert await session_count() == 0
    assert fake_acs.requests == []


async def test_an_unknown_event_type_is_refused(async_client, acs_settings, fake_acs):
    event = incoming_call()
    event["eventType"] = "Microsoft.Communication.SMSReceived"

    response = await deliver(async_client, [event])

    body = assert_api_error(response, 400, "unknown_event_type")
    assert "Microsoft.Communication.SMSReceived" in body["message"]
    assert await session_count() == 0


async def test_one_malformed_event_in_a_batch_refuses_the_whole_batch(
    async_client, acs_settings, fake_acs
):
    broken = incoming_call()
    del broken["data"]["incomingCallContext"]

    response = await deliver(async_client, [incoming_call(), broken])

    assert_api_error(response, 400, "invalid_event")
    assert await session_count() == 0
    assert fake_acs.requests == []


async def test_get_is_not_allowed(async_client, acs_settings, fake_acs):
    response = await async_client.get(f"/acs/events?secret={SECRET}")

    assert_api_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


# --- answer failures ---------------------------------------------------------------------


async def test_an_answer_acs_keeps_failing_is_a_retryable_502_and_a_failed_session(
    async_client, acs_settings, fake_acs
):
    fake_acs.fail_next(500, times=10)

    response = await deliver(async_client, [incoming_call()])

    body = assert_api_error(response, 502, "telephony_unavailable", source="telephony")
    assert body["retryable"] is True
    assert "500" in body["message"]
    session = await Session.objects.aget()
    assert session.status == Session.Status.FAILED
    assert session.end_reason == "answer_failed"
    assert session.call_state == Session.CallState.ANSWER_FAILED
    assert session.call_connection_id == ""
    # Our retry policy (3 attempts in acs_settings), the SDK's own retries off.
    assert len(fake_acs.requests_to(ANSWER)) == acs_settings.PROVIDER_RETRY_ATTEMPTS
    assert fake_acs.answers == []


async def test_an_answer_failing_once_is_retried_and_succeeds(async_client, acs_settings, fake_acs):
    fake_acs.fail_next(500, times=1)

    response = await deliver(async_client, [incoming_call()])

    assert response.status_code == 200, response.content
    session = await Session.objects.aget()
    assert session.status == Session.Status.ACTIVE
    assert session.call_state == Session.CallState.ANSWERING
    (answer,) = fake_acs.answers
    assert session.call_connection_id == answer["callConnectionId"]
    assert len(fake_acs.requests_to(ANSWER)) == 2


async def test_an_answer_acs_rejects_is_not_retried(async_client, acs_settings, fake_acs):
    fake_acs.fail_next(403, code="Forbidden", message="The call is not for this resource.")

    response = await deliver(async_client, [incoming_call()])

    body = assert_api_error(response, 502, "telephony_rejected", source="telephony")
    assert body["retryable"] is False
    assert "403" in body["message"]
    session = await Session.objects.aget()
    assert session.status == Session.Status.FAILED
    assert session.end_reason == "answer_failed"
    assert session.call_state == Session.CallState.ANSWER_FAILED
    assert len(fake_acs.requests_to(ANSWER)) == 1


async def test_a_redelivery_after_a_failed_answer_tries_to_answer_again(
    async_client, acs_settings, fake_acs
):
    """The 502 is retryable: it asks Event Grid to deliver again, and the call still rings.
    The redelivery must try to answer, not report the failed session as a success."""
    fake_acs.fail_next(503, times=acs_settings.PROVIDER_RETRY_ATTEMPTS)
    event = incoming_call()
    failed = await deliver(async_client, [event])
    assert failed.status_code == 502

    again = await deliver(async_client, [event])

    assert again.status_code == 200, again.content
    (answer,) = fake_acs.answers
    (session_id,) = again.json()["sessions"]
    session = await Session.objects.aget(pk=session_id)
    assert session.status == Session.Status.ACTIVE
    assert session.call_connection_id == answer["callConnectionId"]
    assert await Session.objects.filter(status=Session.Status.ACTIVE).acount() == 1
