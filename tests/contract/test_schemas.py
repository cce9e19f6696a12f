"""The contracts in contracts/: valid schemas, good samples accepted, bad samples rejected.

Stream events are built with the real builders of sessions_app/events.py and stamped by
`EventStream`, so these tests also prove that the builders and the contract agree.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from agents_app.tools import ToolCallRecord
from sessions_app import events
from sessions_app.contracts import CONTRACTS_DIR, schema_names, validator
from sessions_app.events import ErrorCode, EventStream
from sessions_app.pipeline.turn_metrics import SessionClock, TurnMetrics
from sessions_app.pipeline.turn_taking import EndOfTurn
from sessions_app.protocol import parse_client_message

SCHEMAS = [
    "agent-list",
    "agent-message",
    "client-message",
    "error-event",
    "session",
    "stream-event",
    "task",
    "turn-metrics",
    "utterance",
]

SESSION_ID = "3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f7a8b9c"
AGENT_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
UTTERANCE_ID = "7c6b5a49-3827-4165-9f4e-3d2c1b0a9f8e"
TASK_ID = "5e4d3c2b-1a09-4f8e-8d7c-6b5a49382716"
CALL_ID = "9d8c7b6a-5f4e-4d3c-8b2a-190f8e7d6c5b"
TS = "2025-06-01T12:34:56.789Z"

DROP = object()


def changed(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of `base` with fields replaced or added, or removed when given DROP."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is DROP:
            del result[key]
        else:
            result[key] = value
    return result


def failed_keywords(name: str, instance: Any) -> set[str]:
    """Every schema keyword that rejects `instance`, nested errors (oneOf, anyOf) included."""
    pending = list(validator(name).iter_errors(instance))
    keywords = set()
    while pending:
        error = pending.pop()
        keywords.add(error.validator)
        pending.extend(error.context)
    return keywords


def stamped(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with the envelope a live connection would give it (first event: seq 1)."""
    return EventStream(uuid.UUID(SESSION_ID)).stamp(body)


# --- base samples, each itself among the good samples --------------------------------------

MESSAGE = {"role": "user", "content": "where is my order"}

UTTERANCE = {
    "id": UTTERANCE_ID,
    "session_id": SESSION_ID,
    "role": "user",
    "seq": 1,
    "text": "what is the status of order 12345",
    "final": True,
    "interrupted": False,
    "heard_text": "",
    "interrupted_by": "",
    "backchannel": False,
    "start_ms": 120,
    "end_ms": 1840,
    "confidence": 0.92,
    "turn_metrics": None,
    "created_at": TS,
}


def built_turn_metrics(*, spoken: bool, cut_by: str = "") -> dict[str, Any]:
    """A record built by the real TurnMetrics, on a clock that steps 300 ms a reading."""
    readings = iter(range(0, 10_000, 300))
    metrics = TurnMetrics(SessionClock(lambda: next(readings) / 1000))
    if spoken:
        metrics.caller_finished(EndOfTurn("model", 240, 0.9))
    metrics.mark("transcript_final")
    metrics.mark("first_token")
    if spoken:
        metrics.mark("first_audio")
        metrics.mark("first_frame")
        metrics.barge_in_paused(onset_ms=None)
        metrics.barge_in_resumed("backchannel")
        metrics.barge_in_paused(onset_ms=2300)  # read at 2400
        metrics.barge_in_confirmed(2600, "speech")
    else:
        metrics.mark("reply_done")
    return metrics.as_json(cut_by)


TYPED_TURN_METRICS = built_turn_metrics(spoken=False)
SPOKEN_TURN_METRICS = built_turn_metrics(spoken=True, cut_by="speech")

TOOL_CALL = {
    "id": CALL_ID,
    "tool": "order_status",
    "arguments": {"order_id": "12345"},
    "result": {"order_id": "12345", "status": "shipped", "eta_days": 2},
    "status": "succeeded",
    "duration_ms": 3,
    "error": "",
    "created_at": TS,
}

TASK = {
    "id": TASK_ID,
    "session_id": SESSION_ID,
    "utterance_id": UTTERANCE_ID,
    "kind": "agent_turn",
    "status": "succeeded",
    "input": {
        "agent": "rules",
        "messages": [{"role": "system", "content": "Be brief."}, MESSAGE],
    },
    "output": {"text": "Order 12345 is shipped."},
    "error": "",
    "created_at": TS,
    "started_at": TS,
    "finished_at": "2025-06-01T12:34:57.001Z",
    "duration_ms": 212,
    "tool_invocations": [TOOL_CALL],
}

SESSION = {
    "id": SESSION_ID,
    "status": "active",
    "channel": "web",
    "agent": {
        "id": AGENT_ID,
        "name": "rules",
        "strategy": "rules",
        "model": "",
        "tools": ["order_status", "account_balance"],
    },
    "created_at": TS,
    "ended_at": None,
    "end_reason": "",
    "sample_rate": 16000,
    "turn_budget": 20,
    "turn_count": 0,
    "interrupted_turn_count": 0,
    "barge_in_count": 0,
    "error_count": 0,
    "caller_id": "",
    "call_connection_id": "",
    "server_call_id": "",
    "correlation_id": "",
    "call_state": "",
    "recording_url": None,
}

PHONE_SESSION = changed(
    SESSION,
    channel="acs",
    caller_id="4:+14255550123",
    call_connection_id="421f0700-e3b0-4a6e-b7c1-8d0b2f3c0a11",
    server_call_id="aHR0cHM6Ly9hcGkuZmxpZ2h0cHJveHkuc2t5cGUuY29t",
    correlation_id="d6f3ab1c-1e2f-4c5d-9a8b-7c6d5e4f3a2b",
    call_state="streaming",
)

CALL_EVENT = {
    "kind": "MediaStreamingFailed",
    "result_code": 400,
    "result_subcode": 8581,
    "result_message": "Transport url is not reachable.",
    "received_at": TS,
}

CREATED_SESSION = changed(
    SESSION,
    token="3f2b8c1e9a4d4e7b8c2a1d5e6f7a8b9c:1uAbCd:signature",
    ws_path=f"/ws/sessions/{SESSION_ID}/?token=abc",
    ws_url=f"ws://localhost:8000/ws/sessions/{SESSION_ID}/?token=abc",
)

ENDED_SESSION = changed(
    SESSION,
    status="ended",
    ended_at="2025-06-01T12:40:00+00:00",
    end_reason="operator_ended",
    turn_count=1,
    interrupted_turn_count=1,
    utterances=[
        UTTERANCE,
        changed(
            UTTERANCE,
            role="agent",
            seq=2,
            confidence=None,
            interrupted=True,
            heard_text="Order",
            interrupted_by="dtmf",
        ),
    ],
    tasks=[TASK],
)

ERROR = events.error(ErrorCode.SESSION_NOT_FOUND, "no session 42", "api")

LISTED_AGENT = {**SESSION["agent"], "available": True, "unavailable_reason": None}
UNAVAILABLE_AGENT = changed(
    LISTED_AGENT,
    name="openai",
    strategy="openai",
    available=False,
    unavailable_reason="OPENAI_API_KEY is not set on the server",
)

# --- good samples ------------------------------------------------------------------------

GOOD = [
    pytest.param("agent-list", {"agents": []}, id="agent-list-empty"),
    pytest.param(
        "agent-list", {"agents": [LISTED_AGENT, UNAVAILABLE_AGENT]}, id="agent-list-unavailable"
    ),
    pytest.param("agent-message", MESSAGE, id="agent-message-user"),
    pytest.param("agent-message", {"role": "system", "content": ""}, id="agent-message-system"),
    pytest.param(
        "agent-message", {"role": "assistant", "content": "Hello!"}, id="agent-message-assistant"
    ),
    pytest.param("client-message", {"type": "config"}, id="client-config-default"),
    pytest.param(
        "client-message", {"type": "config", "sample_rate": 8000}, id="client-config-8000"
    ),
    pytest.param("client-message", {"type": "text", "text": "hello"}, id="client-text"),
    pytest.param(
        "client-message",
        {"type": "text", "text": "hel", "final": False},
        id="client-text-partial",
    ),
    pytest.param("client-message", {"type": "interrupt"}, id="client-interrupt"),
    pytest.param("client-message", {"type": "end"}, id="client-end"),
    pytest.param("error-event", ERROR, id="error-rest-body"),
    pytest.param("error-event", stamped(ERROR), id="error-stream-event"),
    pytest.param(
        "error-event",
        changed(ERROR, ts="2025-06-01T12:34:56+02:00", seq=7, session_id=SESSION_ID),
        id="error-ts-with-offset",
    ),
    pytest.param("utterance", UTTERANCE, id="utterance-user"),
    pytest.param(
        "utterance",
        changed(
            UTTERANCE,
            role="agent",
            seq=2,
            text="Order 12345 is shipped and",
            interrupted=True,
            heard_text="Order 12345",
            start_ms=None,
            end_ms=None,
            confidence=None,
        ),
        id="utterance-agent-interrupted",
    ),
    pytest.param(
        "utterance",
        changed(UTTERANCE, role="agent", seq=2, turn_metrics=TYPED_TURN_METRICS),
        id="utterance-agent-with-turn-metrics",
    ),
    pytest.param("turn-metrics", TYPED_TURN_METRICS, id="turn-metrics-typed"),
    pytest.param("turn-metrics", SPOKEN_TURN_METRICS, id="turn-metrics-spoken-cut"),
    pytest.param("utterance", changed(UTTERANCE, confidence=0), id="utterance-confidence-0"),
    pytest.param("utterance", changed(UTTERANCE, confidence=1), id="utterance-confidence-1"),
    pytest.param("task", TASK, id="task-succeeded-with-tool"),
    pytest.param(
        "task",
        changed(
            TASK,
            utterance_id=None,
            status="pending",
            input={},
            output={},
            started_at=None,
            finished_at=None,
            duration_ms=None,
            tool_invocations=[],
        ),
        id="task-pending",
    ),
    pytest.param(
        "task",
        changed(
            TASK,
            status="failed",
            error="agent_timeout: no answer",
            tool_invocations=[
                changed(TOOL_CALL, status="failed", result=None, error="LookupError: no")
            ],
        ),
        id="task-failed-tool-failed",
    ),
    pytest.param("task", changed(TASK, status="cancelled"), id="task-cancelled"),
    pytest.param("session", SESSION, id="session-active"),
    pytest.param("session", CREATED_SESSION, id="session-created-with-token"),
    pytest.param("session", ENDED_SESSION, id="session-detail-ended"),
    pytest.param(
        "session",
        changed(CREATED_SESSION, channel="acs", ws_url="wss://example.test/ws/sessions/x"),
        id="session-acs-wss",
    ),
    pytest.param("session", PHONE_SESSION, id="session-phone"),
    pytest.param(
        "session",
        changed(ENDED_SESSION, recording_url=f"/api/sessions/{SESSION_ID}/recording"),
        id="session-recorded",
    ),
    pytest.param(
        "session",
        changed(
            PHONE_SESSION,
            status="failed",
            call_state="media_failed",
            utterances=[],
            tasks=[],
            call_events=[
                changed(
                    CALL_EVENT,
                    kind="CallConnected",
                    result_code=None,
                    result_subcode=None,
                    result_message="",
                ),
                CALL_EVENT,
            ],
        ),
        id="session-phone-detail-failed",
    ),
]


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_valid_draft_2020_12(name):
    schema = json.loads((CONTRACTS_DIR / f"{name}.schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/contracts/{name}.schema.json")
    Draft202012Validator.check_schema(schema)


def test_every_contract_is_tested_here():
    assert schema_names() == SCHEMAS


@pytest.mark.parametrize(("name", "instance"), GOOD)
def test_good_sample_is_valid(name, instance):
    validator(name).validate(instance)


@pytest.mark.parametrize(
    "message", [param.values[1] for param in GOOD if param.values[0] == "client-message"]
)
def test_good_client_message_is_accepted_by_the_server(message):
    parse_client_message(json.dumps(message))


# --- bad samples -------------------------------------------------------------------------

BAD = [
    pytest.param(
        "agent-list",
        {"agents": [changed(LISTED_AGENT, available=DROP)]},
        "required",
        id="agent-list-no-availability",
    ),
    pytest.param(
        "agent-list",
        {"agents": [changed(UNAVAILABLE_AGENT, unavailable_reason=None)]},
        "type",
        id="agent-list-unavailable-without-reason",
    ),
    pytest.param(
        "agent-list",
        {"agents": [changed(LISTED_AGENT, unavailable_reason="no key")]},
        "type",
        id="agent-list-available-with-reason",
    ),
    # agent-message
    pytest.param("agent-message", changed(MESSAGE, content=DROP), "required", id="msg-no-content"),
    pytest.param("agent-message", changed(MESSAGE, role="tool"), "enum", id="msg-role-tool"),
    pytest.param("agent-message", changed(MESSAGE, content=42), "type", id="msg-content-int"),
    pytest.param(
        "agent-message", changed(MESSAGE, name="bob"), "additionalProperties", id="msg-extra"
    ),
    # client-message
    pytest.param("client-message", {}, "required", id="client-no-type"),
    pytest.param("client-message", {"type": "hello"}, "const", id="client-unknown-type"),
    pytest.param(
        "client-message", {"type": "config", "sample_rate": 44100}, "enum", id="client-rate-44100"
    ),
    pytest.param("client-message", {"type": "text"}, "required", id="client-text-missing"),
    pytest.param("client-message", {"type": "text", "text": 5}, "type", id="client-text-int"),
    pytest.param(
        "client-message",
        {"type": "text", "text": "hi", "final": "yes"},
        "type",
        id="client-final-string",
    ),
    pytest.param(
        "client-message",
        {"type": "interrupt", "now": True},
        "additionalProperties",
        id="client-interrupt-extra",
    ),
    pytest.param("client-message", ["end"], "type", id="client-not-object"),
    # error-event
    pytest.param("error-event", changed(ERROR, code="not_found"), "enum", id="error-code-unknown"),
    pytest.param("error-event", changed(ERROR, message=""), "minLength", id="error-message-empty"),
    pytest.param(
        "error-event", changed(ERROR, retryable="no"), "type", id="error-retryable-string"
    ),
    pytest.param("error-event", changed(ERROR, source="browser"), "enum", id="error-source"),
    pytest.param("error-event", changed(ERROR, type="warning"), "const", id="error-type"),
    pytest.param(
        "error-event", changed(ERROR, retryable=DROP), "required", id="error-no-retryable"
    ),
    pytest.param(
        "error-event", changed(ERROR, detail="x"), "additionalProperties", id="error-extra"
    ),
    pytest.param("error-event", changed(stamped(ERROR), seq=0), "minimum", id="error-seq-0"),
    pytest.param(
        "error-event",
        changed(stamped(ERROR), ts="2025-06-01 12:34:56"),
        "pattern",
        id="error-ts-space",
    ),
    pytest.param(
        "error-event",
        changed(stamped(ERROR), session_id=SESSION_ID.upper()),
        "pattern",
        id="error-session-id-upper",
    ),
    # turn metrics
    pytest.param(
        "turn-metrics",
        changed(TYPED_TURN_METRICS, stages={"agent": -1}),
        "minimum",
        id="turn-metrics-negative-stage",
    ),
    pytest.param(
        "turn-metrics",
        changed(TYPED_TURN_METRICS, marks={"first_word": 1}),
        "additionalProperties",
        id="turn-metrics-unknown-moment",
    ),
    pytest.param(
        "turn-metrics",
        changed(SPOKEN_TURN_METRICS, end_of_turn={"reason": "guess", "silence_ms": 1}),
        "enum",
        id="turn-metrics-unknown-reason",
    ),
    pytest.param(
        "turn-metrics",
        changed(SPOKEN_TURN_METRICS, barge_ins=[{"outcome": "confirmed", "marks": {}}]),
        "required",
        id="turn-metrics-barge-in-without-onset",
    ),
    pytest.param(
        "turn-metrics", changed(TYPED_TURN_METRICS, cut_by=DROP), "required", id="tm-no-cut-by"
    ),
    # utterance
    pytest.param("utterance", changed(UTTERANCE, heard_text=DROP), "required", id="utt-no-heard"),
    pytest.param(
        "utterance", changed(UTTERANCE, turn_metrics=DROP), "required", id="utt-no-turn-metrics"
    ),
    pytest.param("utterance", changed(UTTERANCE, role="system"), "enum", id="utt-role-system"),
    pytest.param("utterance", changed(UTTERANCE, seq=0), "minimum", id="utt-seq-0"),
    pytest.param("utterance", changed(UTTERANCE, confidence=1.5), "maximum", id="utt-conf-1.5"),
    pytest.param("utterance", changed(UTTERANCE, start_ms=-1), "minimum", id="utt-start-neg"),
    pytest.param("utterance", changed(UTTERANCE, final="true"), "type", id="utt-final-string"),
    pytest.param("utterance", changed(UTTERANCE, created_at="yesterday"), "pattern", id="utt-ts"),
    pytest.param("utterance", changed(UTTERANCE, id="utt-1"), "pattern", id="utt-id-not-uuid"),
    pytest.param(
        "utterance", changed(UTTERANCE, audio="..."), "additionalProperties", id="utt-extra"
    ),
    # task
    pytest.param("task", changed(TASK, status="done"), "enum", id="task-status-done"),
    pytest.param("task", changed(TASK, kind="tool_call"), "enum", id="task-kind"),
    pytest.param("task", changed(TASK, tool_invocations=DROP), "required", id="task-no-calls"),
    pytest.param("task", changed(TASK, duration_ms=-5), "minimum", id="task-duration-neg"),
    pytest.param("task", changed(TASK, duration_ms="212"), "type", id="task-duration-string"),
    pytest.param("task", changed(TASK, finished_at="soon"), "pattern", id="task-finished-at"),
    pytest.param("task", changed(TASK, agent="rules"), "additionalProperties", id="task-extra"),
    pytest.param(
        "task",
        changed(TASK, input={"messages": [{"role": "tool", "content": "{}"}]}),
        "enum",
        id="task-input-message-role",
    ),
    pytest.param(
        "task",
        changed(TASK, tool_invocations=[changed(TOOL_CALL, result=DROP)]),
        "required",
        id="task-call-no-result",
    ),
    pytest.param(
        "task",
        changed(TASK, tool_invocations=[changed(TOOL_CALL, status="running")]),
        "enum",
        id="task-call-status",
    ),
    pytest.param(
        "task",
        changed(TASK, tool_invocations=[changed(TOOL_CALL, arguments=["12345"])]),
        "type",
        id="task-call-arguments-list",
    ),
    # session
    pytest.param("session", changed(SESSION, status="paused"), "enum", id="session-status"),
    pytest.param("session", changed(SESSION, sample_rate=44100), "enum", id="session-rate"),
    pytest.param("session", changed(SESSION, turn_budget=0), "minimum", id="session-budget-0"),
    pytest.param("session", changed(SESSION, agent=DROP), "required", id="session-no-agent"),
    pytest.param("session", changed(SESSION, ended_at=DROP), "required", id="session-no-ended"),
    pytest.param("session", changed(SESSION, ended_at="later"), "pattern", id="session-ended-at"),
    pytest.param(
        "session", changed(SESSION, recording_url="/media/x.wav"), "pattern", id="session-media"
    ),
    pytest.param(
        "session", changed(SESSION, secret="x"), "additionalProperties", id="session-extra"
    ),
    pytest.param(
        "session",
        changed(SESSION, agent=changed(SESSION["agent"], strategy="gpt")),
        "enum",
        id="session-agent-strategy",
    ),
    pytest.param(
        "session",
        changed(SESSION, agent=changed(SESSION["agent"], instructions="secret prompt")),
        "additionalProperties",
        id="session-agent-leaks-instructions",
    ),
    pytest.param("session", changed(CREATED_SESSION, token=""), "minLength", id="session-token"),
    pytest.param(
        "session",
        changed(CREATED_SESSION, ws_url="http://localhost/ws/sessions/x"),
        "pattern",
        id="session-ws-url-http",
    ),
    pytest.param(
        "session",
        changed(CREATED_SESSION, ws_path="/sessions/x"),
        "pattern",
        id="session-ws-path",
    ),
    pytest.param(
        "session", changed(PHONE_SESSION, call_state="ringing"), "enum", id="session-call-state"
    ),
    pytest.param(
        "utterance", changed(UTTERANCE, interrupted_by="cough"), "enum", id="utterance-cut-by"
    ),
    pytest.param(
        "utterance", changed(UTTERANCE, interrupted_by=DROP), "required", id="utterance-no-cut-by"
    ),
    pytest.param(
        "utterance", changed(UTTERANCE, backchannel="yes"), "type", id="utterance-backchannel-type"
    ),
    pytest.param(
        "session", changed(PHONE_SESSION, caller_id=DROP), "required", id="session-no-caller-id"
    ),
    pytest.param(
        "session",
        changed(PHONE_SESSION, call_events=[changed(CALL_EVENT, kind=DROP)]),
        "required",
        id="session-call-event-no-kind",
    ),
    pytest.param(
        "session",
        changed(PHONE_SESSION, call_events=[changed(CALL_EVENT, result_code="400")]),
        "type",
        id="session-call-event-code-string",
    ),
    pytest.param(
        "session",
        changed(ENDED_SESSION, utterances=[changed(UTTERANCE, seq=0)]),
        "minimum",
        id="session-bad-utterance",
    ),
    pytest.param(
        "session",
        changed(ENDED_SESSION, tasks=[changed(TASK, status=DROP)]),
        "required",
        id="session-bad-task",
    ),
]


@pytest.mark.parametrize(("name", "instance", "keyword"), BAD)
def test_bad_sample_is_rejected(name, instance, keyword):
    assert keyword in failed_keywords(name, instance)


# --- stream events -----------------------------------------------------------------------

# Types with a builder in sessions_app/events.py are built with it; the rest are written out.
STREAM_BODIES = [
    pytest.param(
        events.session_started(
            agent_name="rules", strategy="rules", channel="web", sample_rate=16000, turn_budget=20
        ),
        id="session_started",
    ),
    pytest.param({"type": "speech_started", "offset_ms": 0}, id="speech_started"),
    pytest.param(
        {"type": "speech_stopped", "offset_ms": 1840, "duration_ms": 1720}, id="speech_stopped"
    ),
    pytest.param(events.transcript_partial("what is the sta"), id="transcript_partial"),
    pytest.param(
        events.transcript_final(
            text="what is the status", utterance_id=uuid.UUID(UTTERANCE_ID), utterance_seq=1
        ),
        id="transcript_final",
    ),
    pytest.param(
        events.transcript_final(
            text="What's my balance?",
            utterance_id=uuid.UUID(UTTERANCE_ID),
            utterance_seq=3,
            end_of_turn=EndOfTurn("model", silence_ms=240, probability=0.93).as_json(),
        ),
        id="transcript_final-end-of-turn",
    ),
    pytest.param(
        events.transcript_final(
            text="Mhm.",
            utterance_id=uuid.UUID(UTTERANCE_ID),
            utterance_seq=4,
            end_of_turn=EndOfTurn("interjection", silence_ms=200).as_json(),
            backchannel=True,
        ),
        id="transcript_final-backchannel",
    ),
    pytest.param(events.playback_paused(turn=2, played_ms=1240), id="playback_paused"),
    pytest.param(events.playback_resumed(turn=2, played_ms=1240), id="playback_resumed"),
    pytest.param(events.agent_response_delta(turn=1, delta="Order "), id="agent_response-delta"),
    pytest.param(
        events.agent_response_final(
            turn=1, text="Order 12345 is shipped.", utterance_id=uuid.UUID(UTTERANCE_ID)
        ),
        id="agent_response-final",
    ),
    pytest.param(
        {"type": "playback_started", "turn": 1, "sample_rate": 16000}, id="playback_started"
    ),
    pytest.param(
        {"type": "playback_completed", "turn": 1, "played_ms": 1500}, id="playback_completed"
    ),
    *[
        pytest.param(
            events.barge_in(turn=2, played_ms=640, heard_text="Order 12345", source=source),
            id=f"barge_in-{source}",
        )
        for source in ("speech", "text", "dtmf", "interrupt", "operator", "continuation")
    ],
    pytest.param(
        events.turn_metrics(
            turn=2, utterance_id=uuid.UUID(UTTERANCE_ID), metrics=SPOKEN_TURN_METRICS
        ),
        id="turn_metrics",
    ),
    pytest.param(events.dtmf("12"), id="dtmf"),
    pytest.param(events.dtmf("[redacted]#"), id="dtmf-redacted"),
    pytest.param(
        events.tool_invocation(
            turn=1,
            record=ToolCallRecord(
                tool="order_status",
                arguments={"order_id": "12345"},
                status="succeeded",
                result={"order_id": "12345", "status": "shipped", "eta_days": 2},
                error="",
                duration_ms=3,
            ),
        ),
        id="tool_invocation-succeeded",
    ),
    pytest.param(
        events.tool_invocation(
            turn=1,
            record=ToolCallRecord(
                tool="nope",
                arguments={},
                status="failed",
                result=None,
                error="LookupError: unknown tool 'nope'",
                duration_ms=0,
            ),
        ),
        id="tool_invocation-failed",
    ),
    pytest.param(
        events.context_truncated(dropped_turns=1, kept_turns=20, turn_budget=20),
        id="context_truncated",
    ),
    pytest.param(events.session_ended("client_ended"), id="session_ended"),
    *[
        pytest.param(events.error(code, f"{code.value} happened", "server"), id=f"error-{code}")
        for code in ErrorCode
    ],
]


@pytest.mark.parametrize("body", STREAM_BODIES)
def test_stamped_event_is_valid(body):
    validator("stream-event").validate(stamped(body))


def test_every_stream_event_type_has_a_good_sample():
    types = validator("stream-event").schema["properties"]["type"]["enum"]
    assert {param.values[0]["type"] for param in STREAM_BODIES} == set(types)


def test_event_stream_stamps_a_gapless_seq_and_utc_time():
    stream = EventStream(uuid.UUID(SESSION_ID))
    stamped_events = [stream.stamp(events.transcript_partial(text)) for text in ("a", "b", "c")]
    assert [event["seq"] for event in stamped_events] == [1, 2, 3]
    assert {event["session_id"] for event in stamped_events} == {SESSION_ID}
    assert all(event["ts"].endswith("Z") for event in stamped_events)
    for event in stamped_events:
        validator("stream-event").validate(event)


DELTA = stamped(events.agent_response_delta(turn=1, delta="Order "))
FINAL = stamped(
    events.agent_response_final(turn=1, text="Order 1.", utterance_id=uuid.UUID(UTTERANCE_ID))
)
STARTED = stamped(
    events.session_started(
        agent_name="echo", strategy="echo", channel="web", sample_rate=16000, turn_budget=20
    )
)
BARGE_IN = stamped(events.barge_in(turn=1, played_ms=0, heard_text="", source="speech"))
TOOL = stamped(
    events.tool_invocation(
        turn=1,
        record=ToolCallRecord(
            tool="order_status",
            arguments={},
            status="succeeded",
            result={},
            error="",
            duration_ms=0,
        ),
    )
)
TURN_METRICS = stamped(
    events.turn_metrics(turn=1, utterance_id=uuid.UUID(UTTERANCE_ID), metrics=TYPED_TURN_METRICS)
)
STREAM_ERROR = stamped(events.error(ErrorCode.INVALID_JSON, "not JSON", "client"))

BAD_STREAM_EVENTS = [
    pytest.param(changed(DELTA, session_id=DROP), "required", id="no-session-id"),
    pytest.param(changed(DELTA, seq=DROP), "required", id="no-seq"),
    pytest.param(changed(DELTA, seq=0), "minimum", id="seq-0"),
    pytest.param(changed(DELTA, seq="1"), "type", id="seq-string"),
    pytest.param(changed(DELTA, ts="2025-06-01 12:34:56Z"), "pattern", id="ts-space"),
    pytest.param(changed(DELTA, ts="2025-06-01T12:34:56"), "pattern", id="ts-no-zone"),
    pytest.param(changed(DELTA, session_id="session-1"), "pattern", id="session-id-not-uuid"),
    pytest.param(changed(DELTA, type="speech_paused"), "enum", id="unknown-type"),
    pytest.param(changed(DELTA, final=True), "const", id="delta-with-final-true"),
    pytest.param(changed(DELTA, delta=""), "minLength", id="delta-empty"),
    pytest.param(changed(DELTA, turn=0), "minimum", id="delta-turn-0"),
    pytest.param(
        changed(DELTA, text="Order "), "unevaluatedProperties", id="delta-with-final-text"
    ),
    pytest.param(changed(FINAL, utterance_id=DROP), "required", id="final-no-utterance-id"),
    pytest.param(changed(FINAL, final=False), "const", id="final-with-final-false"),
    pytest.param(changed(STARTED, token="x"), "unevaluatedProperties", id="started-extra"),
    pytest.param(changed(STARTED, channel="sip"), "enum", id="started-channel"),
    pytest.param(
        changed(STARTED, agent={"name": "echo", "strategy": "echo", "model": "x"}),
        "additionalProperties",
        id="started-agent-extra",
    ),
    pytest.param(changed(BARGE_IN, source="keyboard"), "enum", id="barge-in-source"),
    pytest.param(stamped(events.dtmf("")), "pattern", id="dtmf-empty"),
    pytest.param(stamped(events.dtmf("4111111111111111")), "not", id="dtmf-card-unredacted"),
    pytest.param(stamped(events.dtmf("1 2")), "pattern", id="dtmf-not-a-tone"),
    pytest.param(changed(BARGE_IN, heard_text=DROP), "required", id="barge-in-no-heard-text"),
    pytest.param(changed(BARGE_IN, played_ms=-1), "minimum", id="barge-in-played-negative"),
    pytest.param(changed(TOOL, status="running"), "enum", id="tool-status"),
    pytest.param(changed(TOOL, arguments=[]), "type", id="tool-arguments-list"),
    pytest.param(changed(TOOL, result=DROP), "required", id="tool-no-result"),
    pytest.param(
        stamped({"type": "speech_stopped", "offset_ms": 10}), "required", id="stopped-no-duration"
    ),
    pytest.param(
        stamped({"type": "playback_started", "turn": 0, "sample_rate": 16000}),
        "minimum",
        id="playback-turn-0",
    ),
    pytest.param(
        stamped(events.transcript_final(text="x", utterance_id=uuid.uuid4(), utterance_seq=0)),
        "minimum",
        id="final-utterance-seq-0",
    ),
    pytest.param(
        stamped(
            events.transcript_final(
                text="x",
                utterance_id=uuid.uuid4(),
                utterance_seq=1,
                end_of_turn={"reason": "guess", "silence_ms": 0, "probability": None},
            )
        ),
        "enum",
        id="final-end-of-turn-reason",
    ),
    pytest.param(
        stamped(events.playback_paused(turn=1, played_ms=-5)), "minimum", id="paused-negative"
    ),
    pytest.param(
        stamped(events.context_truncated(dropped_turns=0, kept_turns=1, turn_budget=1)),
        "minimum",
        id="truncated-nothing-dropped",
    ),
    pytest.param(stamped(events.session_ended("")), "enum", id="ended-no-reason"),
    pytest.param(stamped(events.session_ended("bored")), "enum", id="ended-unknown-reason"),
    pytest.param(changed(STREAM_ERROR, code="oops"), "enum", id="error-code-not-in-set"),
    pytest.param(changed(STREAM_ERROR, seq=DROP), "required", id="error-no-seq"),
    pytest.param(changed(STREAM_ERROR, hint="x"), "additionalProperties", id="error-extra"),
    pytest.param(["not", "an", "event"], "type", id="not-an-object"),
    pytest.param(changed(TURN_METRICS, metrics=DROP), "required", id="turn-metrics-empty"),
    pytest.param(
        changed(TURN_METRICS, metrics=changed(TYPED_TURN_METRICS, stages={"send": -5})),
        "minimum",
        id="turn-metrics-negative-duration",
    ),
    pytest.param(changed(TURN_METRICS, turn=0), "minimum", id="turn-metrics-turn-0"),
]


@pytest.mark.parametrize(("instance", "keyword"), BAD_STREAM_EVENTS)
def test_bad_stream_event_is_rejected(instance, keyword):
    assert keyword in failed_keywords("stream-event", instance)


# --- drift between code and contract -----------------------------------------------------


def test_error_codes_match_the_contract_exactly():
    contract_codes = validator("error-event").schema["properties"]["code"]["enum"]
    assert len(contract_codes) == len(set(contract_codes)), "duplicate code in the contract"
    assert {code.value for code in ErrorCode} == set(contract_codes)


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_error_code_builds_a_valid_rest_body(code):
    body = events.error(code, "something went wrong", "api")
    validator("error-event").validate(body)
    assert body["retryable"] is (code in events.RETRYABLE)
