"""ACS's HTTP notifications: Event Grid deliveries to the webhook and CloudEvents callbacks,
parsed whole, with every malformed delivery refused as a ProtocolError naming its code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sessions_app.acs.notifications import (
    CallNotification,
    IncomingCall,
    SubscriptionValidation,
    parse_callbacks,
    parse_event_grid,
)
from sessions_app.events import ErrorCode
from sessions_app.protocol import ProtocolError

VALIDATION_CODE = "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
CALL_CONTEXT = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJjYyI6Ikg0c0lBQUFBQUFBRUFMMVdYVy9ia09SaG5p"
CORRELATION_ID = "d2ba6d4e-1b68-4d2c-9b44-3c0e2a1d5f6a"
SERVER_CALL_ID = "aHR0cHM6Ly9hcGkuZmxpZ2h0cHJveHkuc2t5cGUuY29tL2FwaS92Mi9jcC9jb252"


def body(events: Any) -> bytes:
    return json.dumps(events).encode()


def validation_event(code: str = VALIDATION_CODE) -> dict[str, Any]:
    return {
        "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        "topic": "/subscriptions/xxx/resourceGroups/rg/providers/Microsoft.Communication/x",
        "subject": "",
        "data": {
            "validationCode": code,
            "validationUrl": "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/x",
        },
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2024-11-15T19:16:10.0000000Z",
        "metadataVersion": "1",
        "dataVersion": "2",
    }


def incoming_call_event(**data_changes: Any) -> dict[str, Any]:
    """An IncomingCall as ACS delivers it (../shared/ACS.md); `...` removes a field."""
    data = {
        "to": {
            "kind": "phoneNumber",
            "rawId": "4:+18005550100",
            "phoneNumber": {"value": "+18005550100"},
        },
        "from": {
            "kind": "phoneNumber",
            "rawId": "4:+14255550123",
            "phoneNumber": {"value": "+14255550123"},
        },
        "callerDisplayName": "",
        "incomingCallContext": CALL_CONTEXT,
        "correlationId": CORRELATION_ID,
        "serverCallId": SERVER_CALL_ID,
    }
    data.update(data_changes)
    return {
        "id": "c3ba6d4e-0000-4d2c-9b44-3c0e2a1d5f6a",
        "topic": "/subscriptions/xxx/resourceGroups/rg/providers/Microsoft.Communication/x",
        "subject": "/caller/4:+14255550123/recipient/4:+18005550100",
        "data": {key: value for key, value in data.items() if value is not ...},
        "eventType": "Microsoft.Communication.IncomingCall",
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "eventTime": "2024-11-15T19:16:11.0000000Z",
    }


def callback_event(kind: str, **data_changes: Any) -> dict[str, Any]:
    """A CloudEvent as ACS posts it to the callback URL; `...` removes a field."""
    data = {
        "version": "2024-09-15",
        "operationContext": "session",
        "callConnectionId": "401f3500-62bd-46a9-8c09-9e1b06caca01",
        "serverCallId": SERVER_CALL_ID,
        "correlationId": CORRELATION_ID,
        "publicEventType": kind,
    }
    data.update(data_changes)
    return {
        "id": "a1b2c3d4-0000-0000-0000-000000000000",
        "source": "calling/callConnections/401f3500-62bd-46a9-8c09-9e1b06caca01",
        "type": kind,
        "data": {key: value for key, value in data.items() if value is not ...},
        "time": "2024-11-15T19:16:13.0000000Z",
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "subject": "calling/callConnections/401f3500-62bd-46a9-8c09-9e1b06caca01",
    }


def refused(parse, raw: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse(raw)
    assert caught.value.message and str(caught.value) == caught.value.message
    return caught.value


# Event Grid: what parses


def test_subscription_validation():
    assert parse_event_grid(body([validation_event()])) == [SubscriptionValidation(VALIDATION_CODE)]


def test_incoming_call_from_a_phone():
    assert parse_event_grid(body([incoming_call_event()])) == [
        IncomingCall(
            incoming_call_context=CALL_CONTEXT,
            caller_id="4:+14255550123",
            server_call_id=SERVER_CALL_ID,
            correlation_id=CORRELATION_ID,
        )
    ]


def test_incoming_call_from_an_acs_user():
    caller = {
        "kind": "communicationUser",
        "rawId": "8:acs:1bdaa2b9-9507-4542-bb64-a7b22c00a8d4_00000021",
        "communicationUser": {"id": "8:acs:1bdaa2b9-9507-4542-bb64-a7b22c00a8d4_00000021"},
    }
    (call,) = parse_event_grid(body([incoming_call_event(**{"from": caller})]))
    assert call.caller_id == "8:acs:1bdaa2b9-9507-4542-bb64-a7b22c00a8d4_00000021"


@pytest.mark.parametrize(
    "changes",
    [
        {"serverCallId": ...},
        {"serverCallId": None},
        {"callerDisplayName": ...},
        {"to": ...},
        {"from": {"kind": "unknown"}},
        {"from": {"kind": "phoneNumber", "rawId": ""}},
    ],
    ids=[
        "no-server-call-id",
        "null-server-call-id",
        "no-display-name",
        "no-to",
        "no-raw-id",
        "empty-raw-id",
    ],
)
def test_incoming_call_optional_fields_may_be_missing(changes):
    (call,) = parse_event_grid(body([incoming_call_event(**changes)]))
    assert isinstance(call, IncomingCall)
    assert call.incoming_call_context == CALL_CONTEXT
    assert call.correlation_id == CORRELATION_ID
    if "serverCallId" in changes:
        assert call.server_call_id == ""
    if "from" in changes:
        assert call.caller_id == ""


def test_several_events_in_one_delivery_keep_their_order():
    second = incoming_call_event(
        correlationId="second-correlation",
        incomingCallContext="second-context",
        **{"from": {"kind": "phoneNumber", "rawId": "4:+442071838750"}},
    )
    parsed = parse_event_grid(body([incoming_call_event(), second, validation_event("v2")]))
    assert [type(event) for event in parsed] == [IncomingCall, IncomingCall, SubscriptionValidation]
    assert parsed[0].correlation_id == CORRELATION_ID
    assert parsed[1] == IncomingCall(
        incoming_call_context="second-context",
        caller_id="4:+442071838750",
        server_call_id=SERVER_CALL_ID,
        correlation_id="second-correlation",
    )
    assert parsed[2] == SubscriptionValidation("v2")


# Event Grid: what is refused


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[{", b"\xff\xfe\x00", b"{'single': 'quotes'}"],
    ids=["empty", "text", "truncated", "not-utf8", "python-repr"],
)
def test_event_grid_body_not_json(raw):
    assert refused(parse_event_grid, raw).code == ErrorCode.INVALID_JSON


@pytest.mark.parametrize(
    "events",
    [
        validation_event(),
        [],
        "events",
        42,
        None,
        [None],
        ["event"],
        [[validation_event()]],
        [{"eventType": "Microsoft.Communication.IncomingCall"}],
        [{**incoming_call_event(), "data": None}],
        [{**incoming_call_event(), "data": "incomingCallContext"}],
        [{**incoming_call_event(), "data": [CALL_CONTEXT]}],
        [incoming_call_event(), {**incoming_call_event(), "data": None}],
    ],
    ids=[
        "object-not-array",
        "empty-array",
        "string",
        "number",
        "null",
        "null-item",
        "string-item",
        "nested-array",
        "no-data",
        "null-data",
        "string-data",
        "array-data",
        "second-item-no-data",
    ],
)
def test_event_grid_body_not_an_array_of_events(events):
    assert refused(parse_event_grid, body(events)).code == ErrorCode.INVALID_EVENT


@pytest.mark.parametrize(
    "changes",
    [
        {"incomingCallContext": ...},
        {"incomingCallContext": ""},
        {"incomingCallContext": None},
        {"incomingCallContext": 42},
        {"correlationId": ...},
        {"correlationId": ""},
        {"correlationId": ["x"]},
        {"from": ...},
        {"from": "4:+14255550123"},
        {"from": None},
        {"from": {"kind": "phoneNumber", "rawId": 14255550123}},
        {"serverCallId": 42},
    ],
    ids=[
        "no-context",
        "empty-context",
        "null-context",
        "number-context",
        "no-correlation-id",
        "empty-correlation-id",
        "list-correlation-id",
        "no-from",
        "string-from",
        "null-from",
        "number-raw-id",
        "number-server-call-id",
    ],
)
def test_incoming_call_missing_required_fields(changes):
    assert refused(parse_event_grid, body([incoming_call_event(**changes)])).code == (
        ErrorCode.INVALID_EVENT
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"correlationId": "c" * 101},
        {"serverCallId": "s" * 501},
        {"from": {"kind": "phoneNumber", "rawId": "4:" + "1" * 99}},
    ],
    ids=["correlation-id", "server-call-id", "raw-id"],
)
def test_incoming_call_ids_longer_than_stored_are_refused(changes):
    refusal = refused(parse_event_grid, body([incoming_call_event(**changes)]))
    assert refusal.code == ErrorCode.INVALID_EVENT and "longer than" in refusal.message


def test_incoming_call_ids_are_cleaned_of_lone_surrogates_and_nuls():
    event = incoming_call_event(
        correlationId="id-\ud800", **{"from": {"kind": "x", "rawId": "8:acs:\x00"}}
    )
    (call,) = parse_event_grid(json.dumps([event]).encode())
    assert (call.correlation_id, call.caller_id) == ("id-\ufffd", "8:acs:\ufffd")


@pytest.mark.parametrize(
    "code",
    [..., "", None, 123],
    ids=["missing", "empty", "null", "number"],
)
def test_validation_without_a_code(code):
    event = validation_event()
    if code is ...:
        del event["data"]["validationCode"]
    else:
        event["data"]["validationCode"] = code
    assert refused(parse_event_grid, body([event])).code == ErrorCode.INVALID_EVENT


@pytest.mark.parametrize(
    "event_type",
    [
        "Microsoft.Communication.CallConnected",
        "Microsoft.Communication.SMSReceived",
        "Microsoft.Storage.BlobCreated",
        "microsoft.communication.incomingcall",
        "",
        None,
        42,
        ...,
    ],
    ids=["call-connected", "sms", "storage", "wrong-case", "empty", "null", "number", "missing"],
)
def test_event_grid_unknown_event_type(event_type):
    event = incoming_call_event()
    if event_type is ...:
        del event["eventType"]
    else:
        event["eventType"] = event_type
    assert refused(parse_event_grid, body([event])).code == ErrorCode.UNKNOWN_EVENT_TYPE


def test_cloud_event_schema_is_not_an_event_grid_event():
    # The webhook is subscribed with the Event Grid schema: `type` instead of `eventType` is
    # some other subscription's delivery.
    event = callback_event("Microsoft.Communication.IncomingCall")
    assert refused(parse_event_grid, body([event])).code == ErrorCode.UNKNOWN_EVENT_TYPE


def test_one_bad_event_refuses_the_whole_delivery():
    events = [incoming_call_event(), {**incoming_call_event(), "eventType": "Other.Event"}]
    assert refused(parse_event_grid, body(events)).code == ErrorCode.UNKNOWN_EVENT_TYPE


def test_unknown_event_type_is_cut_short_in_the_message():
    event = {**incoming_call_event(), "eventType": "Z" * 1000}
    error = refused(parse_event_grid, body([event]))
    assert "Z" * 81 not in error.message


@pytest.mark.parametrize("parse", [parse_event_grid, parse_callbacks], ids=["webhook", "callbacks"])
@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 5000,
        b'[{"data": {"n": ' + b"1" * 5000 + b"}}]",
    ],
    ids=["deeply-nested", "huge-int"],
)
def test_pathological_json_is_invalid_json(parse, raw):
    # The decoder's own limits (recursion, 4300-digit ints) must surface as a ProtocolError
    # (a 400), not a RecursionError or bare ValueError (a 500 from the view).
    assert refused(parse, raw).code == ErrorCode.INVALID_JSON


# Callbacks: what parses


@pytest.mark.parametrize(
    "kind",
    [
        "CallConnected",
        "MediaStreamingStarted",
        "MediaStreamingStopped",
        "CallDisconnected",
        "ParticipantsUpdated",
        "PlayCompleted",
    ],
)
def test_callback_kinds_drop_the_namespace(kind):
    (notification,) = parse_callbacks(body([callback_event(f"Microsoft.Communication.{kind}")]))
    assert notification == CallNotification(
        kind=kind,
        call_connection_id="401f3500-62bd-46a9-8c09-9e1b06caca01",
        result_code=None,
        result_subcode=None,
        result_message="",
    )


def test_callback_result_information_is_parsed():
    result = {
        "code": 400,
        "subCode": 8581,
        "message": "Action failed, the transport URL is not reachable.",
    }
    event = callback_event("Microsoft.Communication.MediaStreamingFailed", resultInformation=result)
    (notification,) = parse_callbacks(body([event]))
    assert notification.kind == "MediaStreamingFailed"
    assert notification.result_code == 400
    assert notification.result_subcode == 8581
    assert notification.result_message == "Action failed, the transport URL is not reachable."


def test_callback_success_result_information():
    result = {"code": 200, "subCode": 0, "message": "The conference has started."}
    event = callback_event("Microsoft.Communication.CallConnected", resultInformation=result)
    (notification,) = parse_callbacks(body([event]))
    assert (notification.result_code, notification.result_subcode) == (200, 0)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (..., (None, None, "")),
        (None, (None, None, "")),
        ("failed", (None, None, "")),
        ([400, 8581], (None, None, "")),
        ({}, (None, None, "")),
        ({"code": 500}, (500, None, "")),
        ({"code": "400", "subCode": "8581", "message": None}, (None, None, "")),
        ({"code": True, "subCode": 4.5, "message": ""}, (None, None, "")),
        ({"message": 42}, (None, None, "42")),
    ],
    ids=[
        "missing",
        "null",
        "string",
        "list",
        "empty",
        "code-only",
        "string-codes",
        "bool-and-float-codes",
        "number-message",
    ],
)
def test_callback_result_information_missing_or_odd(result, expected):
    event = callback_event("Microsoft.Communication.CallDisconnected", resultInformation=result)
    (notification,) = parse_callbacks(body([event]))
    got = (notification.result_code, notification.result_subcode, notification.result_message)
    assert got == expected


def test_callback_result_message_is_capped():
    result = {"code": 500, "subCode": 1, "message": "m" * 5000}
    event = callback_event("Microsoft.Communication.MediaStreamingFailed", resultInformation=result)
    (notification,) = parse_callbacks(body([event]))
    assert notification.result_message == "m" * 1000


@pytest.mark.parametrize(
    "connection_id",
    [..., None],
    ids=["missing", "null"],
)
def test_callback_without_call_connection_id(connection_id):
    event = callback_event("Microsoft.Communication.CallConnected", callConnectionId=connection_id)
    (notification,) = parse_callbacks(body([event]))
    assert notification.call_connection_id == ""


def test_several_callbacks_in_one_delivery_keep_their_order():
    events = [
        callback_event("Microsoft.Communication.CallConnected"),
        callback_event("Microsoft.Communication.MediaStreamingStarted"),
        callback_event(
            "Microsoft.Communication.MediaStreamingStopped",
            resultInformation={"code": 200, "subCode": 0, "message": "stopped"},
        ),
        callback_event("Microsoft.Communication.CallDisconnected"),
    ]
    parsed = parse_callbacks(body(events))
    assert [n.kind for n in parsed] == [
        "CallConnected",
        "MediaStreamingStarted",
        "MediaStreamingStopped",
        "CallDisconnected",
    ]
    assert parsed[2].result_message == "stopped"


# Callbacks: what is refused


@pytest.mark.parametrize(
    "event_type",
    [
        "Microsoft.EventGrid.SubscriptionValidationEvent",
        "Microsoft.Storage.BlobCreated",
        "CallConnected",
        "microsoft.communication.CallConnected",
        "",
        None,
        42,
        ...,
    ],
    ids=[
        "validation",
        "storage",
        "no-namespace",
        "wrong-case",
        "empty",
        "null",
        "number",
        "missing",
    ],
)
def test_callback_type_outside_microsoft_communication(event_type):
    event = callback_event("Microsoft.Communication.CallConnected")
    if event_type is ...:
        del event["type"]
    else:
        event["type"] = event_type
    assert refused(parse_callbacks, body([event])).code == ErrorCode.UNKNOWN_EVENT_TYPE


def test_event_grid_schema_is_not_a_callback():
    # `eventType` instead of `type`: an Event Grid delivery posted to the callback URL.
    assert refused(parse_callbacks, body([incoming_call_event()])).code == (
        ErrorCode.UNKNOWN_EVENT_TYPE
    )


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", ErrorCode.INVALID_JSON),
        (b"{not json", ErrorCode.INVALID_JSON),
        (body([]), ErrorCode.INVALID_EVENT),
        (
            body({"type": "Microsoft.Communication.CallConnected", "data": {}}),
            ErrorCode.INVALID_EVENT,
        ),
        (body([{"type": "Microsoft.Communication.CallConnected"}]), ErrorCode.INVALID_EVENT),
        (
            body([{"type": "Microsoft.Communication.CallConnected", "data": "x"}]),
            ErrorCode.INVALID_EVENT,
        ),
        (body(["Microsoft.Communication.CallConnected"]), ErrorCode.INVALID_EVENT),
    ],
    ids=["empty", "not-json", "empty-array", "object", "no-data", "string-data", "string-item"],
)
def test_callback_malformed_bodies(raw, code):
    assert refused(parse_callbacks, raw).code == code


def test_callback_call_connection_id_of_wrong_type():
    event = callback_event("Microsoft.Communication.CallConnected", callConnectionId=42)
    assert refused(parse_callbacks, body([event])).code == ErrorCode.INVALID_EVENT


def test_one_bad_callback_refuses_the_whole_delivery():
    events = [
        callback_event("Microsoft.Communication.CallConnected"),
        callback_event("Other.Namespace.Thing"),
    ]
    assert refused(parse_callbacks, body(events)).code == ErrorCode.UNKNOWN_EVENT_TYPE
