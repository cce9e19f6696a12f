"""What ACS and Event Grid send this server, built in one place for tests and benchmarks.

Shapes follow ../shared/ACS.md: Event Grid deliveries (Event Grid schema, `eventType`),
call callbacks (CloudEvents, `type`), and the media socket's camelCase JSON frames.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

CALLER = "4:+14255550123"
CALLEE = "4:+18005550100"
SERVER_CALL_ID = (
    "aHR0cHM6Ly9hcGkuZmxpZ2h0cHJveHkuc2t5cGUuY29tL2FwaS92Mi9jcC9jb252LXVzZWEyLTAxLmNvbnYuc2t5cGU"
)
TOPIC = (
    "/subscriptions/0000/resourceGroups/rg/providers/"
    "Microsoft.Communication/communicationServices/acs-test"
)
NAMESPACE = "Microsoft.Communication."


# --- Event Grid, to /acs/events ----------------------------------------------------------------


def incoming_call(
    *,
    raw_id: str = CALLER,
    correlation_id: str | None = None,
    context: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    """An IncomingCall as Event Grid delivers it, for a PSTN caller."""
    body = {
        "to": {"kind": "phoneNumber", "rawId": CALLEE, "phoneNumber": {"value": CALLEE[2:]}},
        "from": {
            "kind": "phoneNumber",
            "rawId": raw_id,
            "phoneNumber": {"value": raw_id.removeprefix("4:")},
        },
        "serverCallId": SERVER_CALL_ID,
        "callerDisplayName": "Contoso Caller",
        "incomingCallContext": context or f"eyJhbGciOiJub25lIn0.{uuid.uuid4().hex}.",
        "correlationId": correlation_id or str(uuid.uuid4()),
        **data,
    }
    return {
        "id": str(uuid.uuid4()),
        "topic": TOPIC,
        "subject": f"/caller/{raw_id}/recipient/{CALLEE}",
        "eventType": "Microsoft.Communication.IncomingCall",
        "eventTime": "2024-11-15T19:16:10.123Z",
        "dataVersion": "1.0",
        "metadataVersion": "1",
        "data": body,
    }


def validation_event(code: str) -> dict[str, Any]:
    """Event Grid's subscription validation handshake."""
    return {
        "id": str(uuid.uuid4()),
        "topic": TOPIC,
        "subject": "",
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2024-11-15T19:00:00.000Z",
        "dataVersion": "2",
        "metadataVersion": "1",
        "data": {
            "validationCode": code,
            "validationUrl": "https://rp-eastus.eventgrid.azure.net/eventsubscriptions/x/validate",
        },
    }


# --- ACS callbacks, to /acs/callbacks/<session id> ---------------------------------------------


def callback_event(kind: str, call_connection_id: str, **data: Any) -> dict[str, Any]:
    """A call event as ACS posts it (`kind`: CallConnected, MediaStreamingFailed, …)."""
    return {
        "id": str(uuid.uuid4()),
        "source": f"calling/callConnections/{call_connection_id}",
        "type": f"{NAMESPACE}{kind}",
        "data": {
            "version": "2024-09-01-preview",
            "callConnectionId": call_connection_id,
            "serverCallId": SERVER_CALL_ID,
            "correlationId": str(uuid.uuid4()),
            "publicEventType": f"{NAMESPACE}{kind}",
            **data,
        },
        "time": "2024-11-15T19:16:12.925Z",
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "subject": f"calling/callConnections/{call_connection_id}",
    }


# --- the media socket, /ws/acs/<session id>/ ---------------------------------------------------


def audio_metadata(sample_rate: int = 16000) -> dict[str, Any]:
    body = {
        "subscriptionId": str(uuid.uuid4()),
        "encoding": "PCM",
        "sampleRate": sample_rate,
        "channels": 1,
        "length": sample_rate * 2 // 50,  # bytes in 20 ms
    }
    return {"kind": "AudioMetadata", "audioMetadata": body}


def audio_data(pcm: bytes, *, silent: bool = False) -> dict[str, Any]:
    body = {
        "timestamp": "2024-11-15T19:16:12.925Z",
        "participantRawID": CALLER,
        "data": base64.b64encode(pcm).decode(),
        "silent": silent,
    }
    return {"kind": "AudioData", "audioData": body}


def dtmf(tone: str) -> dict[str, Any]:
    return {"kind": "DtmfData", "dtmfData": {"data": tone}}


def transcription(text: str, status: str = "Final", **extra: Any) -> dict[str, Any]:
    """What ACS's own speech recognition heard (1.2 s into the call, 0.9 s long)."""
    body = {
        "text": text,
        "format": "display",
        "confidence": 0.87,
        "offset": 12_000_000,
        "duration": 9_000_000,
        "words": [],
        "participantRawID": CALLER,
        "resultStatus": status,
        **extra,
    }
    return {"kind": "TranscriptionData", "transcriptionData": body}
