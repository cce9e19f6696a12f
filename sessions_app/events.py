"""Every server→client event is built here, and nowhere else.

Builders return the event body; `EventStream` stamps the envelope (`session_id`, `seq`, `ts`)
so that sequence numbers have no gaps. The shapes match contracts/stream-event.schema.json.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, TypedDict

from agents_app.errors import ProviderError
from agents_app.tools import ToolCallRecord
from voiceproject.metrics import ERRORS

Event = dict[str, Any]


class ErrorCode(StrEnum):
    """The closed set of error codes; contracts/error-event.schema.json lists the same."""

    INVALID_JSON = "invalid_json"
    INVALID_EVENT = "invalid_event"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    INVALID_AUDIO = "invalid_audio"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    SESSION_NOT_FOUND = "session_not_found"
    SESSION_ENDED = "session_ended"
    ALREADY_CONNECTED = "already_connected"
    AT_CAPACITY = "at_capacity"
    AUDIO_OVERRUN = "audio_overrun"
    AGENT_NOT_FOUND = "agent_not_found"
    RECORDING_NOT_FOUND = "recording_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    RATE_LIMITED = "rate_limited"
    AGENT_UNAVAILABLE = "agent_unavailable"
    AGENT_TIMEOUT = "agent_timeout"
    AGENT_REJECTED = "agent_rejected"
    STT_UNAVAILABLE = "stt_unavailable"
    STT_OVERLOADED = "stt_overloaded"
    STT_TIMEOUT = "stt_timeout"
    STT_REJECTED = "stt_rejected"
    TTS_UNAVAILABLE = "tts_unavailable"
    TTS_TIMEOUT = "tts_timeout"
    TTS_REJECTED = "tts_rejected"
    TELEPHONY_UNAVAILABLE = "telephony_unavailable"
    TELEPHONY_TIMEOUT = "telephony_timeout"
    TELEPHONY_REJECTED = "telephony_rejected"
    NOT_CONFIGURED = "not_configured"
    TOOL_FAILED = "tool_failed"
    STORAGE_FAILED = "storage_failed"
    INTERNAL_ERROR = "internal_error"


ErrorSource = Literal[
    "client", "api", "agent", "stt", "tts", "telephony", "tool", "storage", "server"
]
BargeInSource = Literal["speech", "text", "dtmf", "interrupt", "operator", "continuation"]

# Whether the same request may succeed if tried again, by code.
RETRYABLE = {
    ErrorCode.RATE_LIMITED,
    ErrorCode.AGENT_UNAVAILABLE,
    ErrorCode.AGENT_TIMEOUT,
    ErrorCode.STT_UNAVAILABLE,
    ErrorCode.STT_OVERLOADED,
    ErrorCode.STT_TIMEOUT,
    ErrorCode.TTS_UNAVAILABLE,
    ErrorCode.TTS_TIMEOUT,
    ErrorCode.TELEPHONY_UNAVAILABLE,
    ErrorCode.TELEPHONY_TIMEOUT,
    ErrorCode.STORAGE_FAILED,
    ErrorCode.INTERNAL_ERROR,
    ErrorCode.AT_CAPACITY,
}


class ErrorBody(TypedDict):
    type: Literal["error"]
    code: str
    message: str
    retryable: bool
    source: str


def error(code: ErrorCode, message: str, source: ErrorSource) -> ErrorBody:
    """An error event body; also the body of every 4xx/5xx answer of the REST API. Every
    error is built here, so here it is counted (voice_errors_total)."""
    ERRORS.labels(code=code.value).inc()
    return {
        "type": "error",
        "code": code.value,
        "message": message,
        "retryable": code in RETRYABLE,
        "source": source,
    }


def error_for(exc: ProviderError) -> ErrorBody:
    """The error event for a provider failure (the taxonomy's code, the provider's role)."""
    return error(ErrorCode(exc.code), str(exc), exc.role)


def session_started(
    *, agent_name: str, strategy: str, channel: str, sample_rate: int, turn_budget: int
) -> Event:
    return {
        "type": "session_started",
        "agent": {"name": agent_name, "strategy": strategy},
        "channel": channel,
        "sample_rate": sample_rate,
        "turn_budget": turn_budget,
    }


def transcript_partial(text: str) -> Event:
    return {"type": "transcript_partial", "text": text}


def transcript_final(
    *,
    text: str,
    utterance_id: uuid.UUID,
    utterance_seq: int,
    end_of_turn: dict[str, object] | None = None,
    backchannel: bool = False,
) -> Event:
    """A final utterance as stored. `end_of_turn` says why the caller's turn ended; a
    `backchannel` was said over the agent, who went on; a continued utterance comes again
    under its first id with the whole text."""
    event: Event = {
        "type": "transcript_final",
        "text": text,
        "utterance_id": str(utterance_id),
        "utterance_seq": utterance_seq,
        "backchannel": backchannel,
    }
    if end_of_turn is not None:
        event["end_of_turn"] = end_of_turn
    return event


def agent_response_delta(*, turn: int, delta: str) -> Event:
    return {"type": "agent_response", "turn": turn, "delta": delta, "final": False}


def agent_response_final(*, turn: int, text: str, utterance_id: uuid.UUID) -> Event:
    return {
        "type": "agent_response",
        "turn": turn,
        "text": text,
        "final": True,
        "utterance_id": str(utterance_id),
    }


def dtmf(digits: str) -> Event:
    """A keypad entry of a phone caller (already redacted), ended by "#" or a pause."""
    return {"type": "dtmf", "digits": digits}


def speech_started(*, offset_ms: int) -> Event:
    return {"type": "speech_started", "offset_ms": offset_ms}


def speech_stopped(*, offset_ms: int, duration_ms: int) -> Event:
    return {"type": "speech_stopped", "offset_ms": offset_ms, "duration_ms": duration_ms}


def playback_started(*, turn: int, sample_rate: int) -> Event:
    return {"type": "playback_started", "turn": turn, "sample_rate": sample_rate}


def playback_completed(*, turn: int, played_ms: int) -> Event:
    return {"type": "playback_completed", "turn": turn, "played_ms": played_ms}


def playback_paused(*, turn: int, played_ms: int) -> Event:
    """The caller may be speaking: no frame follows until `playback_resumed` or `barge_in`;
    drop what is buffered (it will not be heard)."""
    return {"type": "playback_paused", "turn": turn, "played_ms": played_ms}


def playback_resumed(*, turn: int, played_ms: int) -> Event:
    """A false alarm or an acknowledgement: the reply goes on from the word it paused in."""
    return {"type": "playback_resumed", "turn": turn, "played_ms": played_ms}


def barge_in(*, turn: int, played_ms: int, heard_text: str, source: BargeInSource) -> Event:
    return {
        "type": "barge_in",
        "turn": turn,
        "played_ms": played_ms,
        "heard_text": heard_text,
        "source": source,
    }


def turn_metrics(*, turn: int, utterance_id: uuid.UUID, metrics: dict[str, Any]) -> Event:
    """Where an agent turn's time went, once it is over (contracts/turn-metrics.schema.json);
    `utterance_id` names the reply as in `agent_response`."""
    return {
        "type": "turn_metrics",
        "turn": turn,
        "utterance_id": str(utterance_id),
        "metrics": metrics,
    }


def tool_invocation(*, turn: int, record: ToolCallRecord) -> Event:
    return {"type": "tool_invocation", "turn": turn, **asdict(record)}


def context_truncated(*, dropped_turns: int, kept_turns: int, turn_budget: int) -> Event:
    return {
        "type": "context_truncated",
        "dropped_turns": dropped_turns,
        "kept_turns": kept_turns,
        "turn_budget": turn_budget,
    }


def session_ended(reason: str) -> Event:
    return {"type": "session_ended", "reason": reason}


@dataclass
class EventStream:
    """Stamps one connection's events with the session id, a gapless `seq` and a UTC time."""

    session_id: uuid.UUID
    seq: int = 0

    def stamp(self, body: Event | ErrorBody) -> Event:
        self.seq += 1
        return {
            **body,
            "session_id": str(self.session_id),
            "seq": self.seq,
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
