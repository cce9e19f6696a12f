"""JSON shapes of sessions and utterances (contracts/session and utterance schemas)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from agents_app.serializers import agent_json, iso_time
from sessions_app.models import CallEvent, Session, Utterance


def session_json(session: Session) -> dict[str, Any]:
    return {
        "id": str(session.id),
        "status": session.status,
        "channel": session.channel,
        "agent": agent_json(session.agent),
        "created_at": iso_time(session.created_at),
        "ended_at": iso_time(session.ended_at),
        "end_reason": session.end_reason,
        "sample_rate": session.sample_rate,
        "turn_budget": session.turn_budget,
        "turn_count": session.turn_count,
        "interrupted_turn_count": session.interrupted_turn_count,
        "barge_in_count": session.barge_in_count,
        "error_count": session.error_count,
        "caller_id": session.caller_id,
        "call_connection_id": session.call_connection_id,
        "server_call_id": session.server_call_id,
        "correlation_id": session.correlation_id,
        "call_state": session.call_state,
        "recording_url": recording_url(session),
    }


def recording_url(session: Session) -> str | None:
    """The operators' download of the session's recording, if it has one."""
    if not session.recording:
        return None
    return reverse("session-recording", args=[session.id])


def utterance_json(utterance: Utterance) -> dict[str, Any]:
    return {
        "id": str(utterance.id),
        "session_id": str(utterance.session_id),
        "role": utterance.role,
        "seq": utterance.seq,
        "text": utterance.text,
        "final": utterance.final,
        "interrupted": utterance.interrupted,
        "heard_text": utterance.heard_text,
        "interrupted_by": utterance.interrupted_by,
        "backchannel": utterance.backchannel,
        "start_ms": utterance.start_ms,
        "end_ms": utterance.end_ms,
        "confidence": utterance.confidence,
        "turn_metrics": utterance.turn_metrics,
        "created_at": iso_time(utterance.created_at),
    }


def call_event_json(event: CallEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "result_code": event.result_code,
        "result_subcode": event.result_subcode,
        "result_message": event.result_message,
        "received_at": iso_time(event.received_at),
    }
