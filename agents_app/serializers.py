"""JSON shapes of agents_app records (contracts/task.schema.json)."""

from __future__ import annotations

from typing import Any

from agents_app.models import Agent, Task, ToolInvocation
from agents_app.strategies import unavailable_reason


def iso_time(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def agent_json(agent: Agent) -> dict[str, Any]:
    return {
        "id": str(agent.id),
        "name": agent.name,
        "strategy": agent.strategy,
        "model": agent.model,
        "tools": list(agent.tools or []),
    }


def agent_listing_json(agent: Agent) -> dict[str, Any]:
    """An agent as GET /api/agents lists it: with whether it can answer here, and why not."""
    reason = unavailable_reason(agent.strategy)
    return {**agent_json(agent), "available": reason is None, "unavailable_reason": reason}


def tool_invocation_json(call: ToolInvocation) -> dict[str, Any]:
    return {
        "id": str(call.id),
        "tool": call.tool,
        "arguments": call.arguments,
        "result": call.result,
        "status": call.status,
        "duration_ms": call.duration_ms,
        "error": call.error,
        "created_at": iso_time(call.created_at),
    }


def task_json(task: Task, tool_invocations: list[ToolInvocation]) -> dict[str, Any]:
    return {
        "id": str(task.id),
        "session_id": str(task.session_id),
        "utterance_id": str(task.utterance_id) if task.utterance_id else None,
        "kind": task.kind,
        "status": task.status,
        "input": task.input,
        "output": task.output,
        "error": task.error,
        "created_at": iso_time(task.created_at),
        "started_at": iso_time(task.started_at),
        "finished_at": iso_time(task.finished_at),
        "duration_ms": task.duration_ms,
        "tool_invocations": [tool_invocation_json(call) for call in tool_invocations],
    }
