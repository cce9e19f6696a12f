"""Tools an agent may call, and the per-turn toolbox that records every call.

The demo tools answer from deterministic fake data, so the rules and OpenAI agents can show
a full tool round trip offline.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import jsonschema

from agents_app.models import ToolInvocation

logger = logging.getLogger(__name__)

JSON = dict[str, Any]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: JSON
    run: Callable[[JSON], Awaitable[JSON]]

    def spec(self) -> JSON:
        """The tool as an OpenAI function definition."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


async def order_status(arguments: JSON) -> JSON:
    order_id = str(arguments["order_id"])
    states = ("processing", "shipped", "out for delivery", "delivered")
    index = int(hashlib.sha256(order_id.encode()).hexdigest(), 16) % len(states)
    return {"order_id": order_id, "status": states[index], "eta_days": len(states) - 1 - index}


async def account_balance(arguments: JSON) -> JSON:
    return {"balance": "1,234.56", "currency": "USD"}


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            name="order_status",
            description="Look up the delivery status of an order by its order number.",
            parameters={
                "type": "object",
                "properties": {"order_id": {"type": "string", "description": "Order number"}},
                "required": ["order_id"],
                "additionalProperties": False,
            },
            run=order_status,
        ),
        Tool(
            name="account_balance",
            description="Get the caller's current account balance.",
            parameters={"type": "object", "properties": {}, "additionalProperties": False},
            run=account_balance,
        ),
    )
}


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call as stored and reported; arguments and result already redacted.

    Its fields are ToolInvocation's and the `tool_invocation` event's, so both take it whole.
    """

    tool: str
    arguments: JSON
    status: str
    result: Any
    error: str
    duration_ms: int


class ToolCallListener(Protocol):
    async def on_tool_call(self, record: ToolCallRecord) -> None: ...


class ToolBox:
    """The tools one agent turn may call. Each call is validated, timed, stored and reported."""

    def __init__(
        self,
        names: list[str],
        *,
        task_id: uuid.UUID,
        redact: Callable[[Any], Any],
        listener: ToolCallListener,
    ) -> None:
        self.tools = {name: TOOLS[name] for name in names if name in TOOLS}
        self._task_id = task_id
        self._redact = redact
        self._listener = listener

    def specs(self) -> list[JSON]:
        return [tool.spec() for tool in self.tools.values()]

    async def call(self, name: str, arguments: JSON) -> JSON:
        """Run a tool; a failure is returned as `{"error": ...}` so the agent can recover."""
        started = time.perf_counter()
        result: JSON | None = None
        error = ""
        try:
            tool = self.tools.get(name)
            if tool is None:
                raise LookupError(f"unknown tool {name!r}")
            jsonschema.validate(arguments, tool.parameters)
            result = await tool.run(arguments)
        except Exception as exc:  # a tool failure must not end the turn
            error = f"{type(exc).__name__}: {self._redact(str(exc).splitlines()[0])}"
            logger.warning("tool %s failed: %s", name, error)
        record = ToolCallRecord(
            tool=name,
            arguments=self._redact(arguments),
            status=ToolInvocation.Status.FAILED if error else ToolInvocation.Status.SUCCEEDED,
            result=self._redact(result),
            error=error,
            duration_ms=int((time.perf_counter() - started) * 1000),
        )
        await ToolInvocation.objects.acreate(task_id=self._task_id, **asdict(record))
        await self._listener.on_tool_call(record)
        # The model sees only what may be stored: redacted arguments and results.
        return {"error": error} if error else record.result or {}
