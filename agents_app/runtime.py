"""The agent runtime: runs one agent turn, with a Task row, recorded tool calls and typed errors."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from django.utils import timezone

from agents_app.errors import ProviderError
from agents_app.models import Agent, Task
from agents_app.strategies import build_strategy
from agents_app.strategies.base import AgentSpec, ChatMessage
from agents_app.tools import ToolBox, ToolCallListener
from voiceproject.metrics import AGENT_FIRST_TOKEN_SECONDS

logger = logging.getLogger(__name__)


class TurnListener(ToolCallListener, Protocol):
    async def on_delta(self, text: str) -> None:
        """A piece of the reply, raw from the strategy (the listener redacts before sending)."""
        ...


def spec_for(agent: Agent) -> AgentSpec:
    return AgentSpec(
        name=agent.name,
        strategy=agent.strategy,
        model=agent.model,
        instructions=agent.instructions,
        tools=list(agent.tools or []),
    )


class AgentRuntime:
    """Runs agent turns for one session with the session's agent.

    `redact` is applied to everything the runtime stores (reply text, tool arguments and
    results); it is passed in so that agents_app does not depend on the conversation side.
    """

    def __init__(self, spec: AgentSpec, *, redact: Callable[[Any], Any]) -> None:
        self.spec = spec
        self.strategy = build_strategy(spec)
        self._redact = redact
        self._first_token = AGENT_FIRST_TOKEN_SECONDS.labels(strategy=spec.strategy)
        # The Task behind each listener's turn, so that a turn cut later can say so.
        self._tasks: weakref.WeakKeyDictionary[TurnListener, uuid.UUID] = (
            weakref.WeakKeyDictionary()
        )

    async def run_turn(
        self,
        *,
        session_id: uuid.UUID,
        utterance_id: uuid.UUID | None,
        messages: list[ChatMessage],
        listener: TurnListener,
    ) -> str:
        """Stream one reply to `listener` and return its whole (unredacted) text."""
        task = await Task.objects.acreate(
            session_id=session_id,
            utterance_id=utterance_id,
            status=Task.Status.RUNNING,
            started_at=timezone.now(),
            input={"agent": self.spec.name, "messages": messages},
        )
        self._tasks[listener] = task.id
        toolbox = ToolBox(self.spec.tools, task_id=task.id, redact=self._redact, listener=listener)
        pieces: list[str] = []
        asked = time.perf_counter()
        try:
            async for piece in self.strategy.stream_reply(messages, toolbox):
                if not pieces:
                    self._first_token.observe(time.perf_counter() - asked)
                pieces.append(piece)
                await listener.on_delta(piece)
        except asyncio.CancelledError:
            await self._finish(task, Task.Status.CANCELLED, pieces, "cancelled by barge-in")
            raise
        except ProviderError as exc:
            await self._finish(task, Task.Status.FAILED, pieces, f"{exc.code}: {exc}")
            raise
        except Exception as exc:
            logger.exception("agent turn failed in %s", self.spec.strategy)
            await self._finish(task, Task.Status.FAILED, pieces, type(exc).__name__)
            raise
        await self._finish(task, Task.Status.SUCCEEDED, pieces, "")
        return "".join(pieces)

    async def turn_cut(self, listener: TurnListener, cut_by: str) -> None:
        """The turn `listener` received was cut short (a barge-in, an error, the session's end)
        after its reply had been generated: its Task did not succeed, it was cancelled."""
        task_id = self._tasks.pop(listener, None)
        if task_id is None:
            return  # a turn the runtime did not run (a greeting)
        await Task.objects.filter(pk=task_id, status=Task.Status.SUCCEEDED).aupdate(
            status=Task.Status.CANCELLED, error=f"interrupted by {cut_by}"
        )

    async def _finish(self, task: Task, status: str, pieces: list[str], error: str) -> None:
        await Task.objects.filter(pk=task.pk).aupdate(
            status=status,
            output={"text": self._redact("".join(pieces))},
            error=error,
            finished_at=timezone.now(),
        )

    async def aclose(self) -> None:
        await self.strategy.aclose()
