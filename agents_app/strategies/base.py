"""The agent strategy protocol: given the context, stream the reply as text pieces."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from agents_app.tools import ToolBox

ChatMessage = dict[str, str]


@dataclass(frozen=True)
class AgentSpec:
    """What a strategy needs to know about the configured agent."""

    name: str
    strategy: str
    model: str = ""
    instructions: str = ""
    tools: list[str] = field(default_factory=list)


class AgentStrategy(Protocol):
    def stream_reply(self, messages: list[ChatMessage], tools: ToolBox) -> AsyncIterator[str]:
        """Yield the reply in pieces as soon as each is known; call tools through `tools`."""
        ...

    async def aclose(self) -> None:
        """Release connections; called when the session ends."""
        ...


def last_user_text(messages: list[ChatMessage]) -> str:
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


def words_of(text: str) -> list[str]:
    """Split a fixed reply into word-sized deltas, so offline agents stream like an LLM."""
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + words[-1:]
