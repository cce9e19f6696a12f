"""ACS's HTTP notifications, typed: Event Grid deliveries to the webhook, and the CloudEvents
ACS posts to a call's callback URL.

A delivery is parsed whole before anything acts on it, so a malformed one changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sessions_app.events import ErrorCode
from sessions_app.protocol import ProtocolError
from sessions_app.text import clean_text

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
INCOMING_CALL = "Microsoft.Communication.IncomingCall"
CALL_EVENT_PREFIX = "Microsoft.Communication."


@dataclass(frozen=True)
class SubscriptionValidation:
    code: str


@dataclass(frozen=True)
class IncomingCall:
    incoming_call_context: str
    caller_id: str  # the raw id: "4:+14255550123" for a phone, "8:acs:…" for an ACS user
    server_call_id: str
    correlation_id: str


@dataclass(frozen=True)
class CallNotification:
    kind: str  # "CallConnected", "MediaStreamingFailed", … (namespace dropped)
    call_connection_id: str
    result_code: int | None
    result_subcode: int | None
    result_message: str


def _events(body: bytes) -> list[dict[str, Any]]:
    try:
        events = json.loads(body)
    except (ValueError, RecursionError) as exc:  # bad JSON, too deep, too long a number
        raise ProtocolError(ErrorCode.INVALID_JSON, "the body is not valid JSON") from exc
    if not isinstance(events, list) or not events:
        raise ProtocolError(ErrorCode.INVALID_EVENT, "the body must be a non-empty JSON array")
    if not all(isinstance(event, dict) and isinstance(event.get("data"), dict) for event in events):
        raise ProtocolError(ErrorCode.INVALID_EVENT, "each event must be an object with 'data'")
    return events


def _text(
    data: dict[str, Any], name: str, *, required: bool = True, max_length: int | None = None
) -> str:
    value = data.get(name)
    if isinstance(value, str) and max_length is not None and len(value) > max_length:
        raise ProtocolError(
            ErrorCode.INVALID_EVENT, f"'data.{name}' is longer than {max_length} characters"
        )
    if isinstance(value, str) and (value or not required):
        return clean_text(value)
    if value is None and not required:
        return ""
    raise ProtocolError(ErrorCode.INVALID_EVENT, f"'data.{name}' must be a non-empty string")


def parse_event_grid(body: bytes) -> list[SubscriptionValidation | IncomingCall]:
    """A webhook delivery (Event Grid schema: `eventType`); other event types are refused."""
    parsed: list[SubscriptionValidation | IncomingCall] = []
    for event in _events(body):
        kind, data = event.get("eventType"), event["data"]
        if kind == VALIDATION_EVENT:
            parsed.append(SubscriptionValidation(_text(data, "validationCode")))
        elif kind == INCOMING_CALL:
            caller = data.get("from")
            if not isinstance(caller, dict):
                raise ProtocolError(ErrorCode.INVALID_EVENT, "'data.from' must be an object")
            parsed.append(
                IncomingCall(
                    incoming_call_context=_text(data, "incomingCallContext"),
                    # The longest each is stored (Session's fields).
                    caller_id=_text(caller, "rawId", required=False, max_length=100),
                    server_call_id=_text(data, "serverCallId", required=False, max_length=500),
                    correlation_id=_text(data, "correlationId", max_length=100),
                )
            )
        else:
            shown = kind[:80] if isinstance(kind, str) else type(kind).__name__
            raise ProtocolError(
                ErrorCode.UNKNOWN_EVENT_TYPE,
                f"event type {shown!r} is not handled here: subscribe only to "
                f"{INCOMING_CALL} (and validation)",
            )
    return parsed


def parse_callbacks(body: bytes) -> list[CallNotification]:
    """A callback delivery (CloudEvents: `type`); every Microsoft.Communication.* kind counts."""
    parsed = []
    for event in _events(body):
        kind, data = event.get("type"), event["data"]
        if not isinstance(kind, str) or not kind.startswith(CALL_EVENT_PREFIX):
            raise ProtocolError(
                ErrorCode.UNKNOWN_EVENT_TYPE, "each event needs a Microsoft.Communication.* type"
            )
        result = data.get("resultInformation")
        result = result if isinstance(result, dict) else {}
        parsed.append(
            CallNotification(
                kind=clean_text(kind.removeprefix(CALL_EVENT_PREFIX))[:60],
                call_connection_id=_text(data, "callConnectionId", required=False, max_length=100),
                result_code=_int_or_none(result.get("code")),
                result_subcode=_int_or_none(result.get("subCode")),
                result_message=clean_text(str(result.get("message") or ""))[:1000],
            )
        )
    return parsed


def _int_or_none(value: object) -> int | None:
    return value if type(value) is int else None
