"""The echo agent: repeats what the caller said. The offline default."""

from __future__ import annotations

from collections.abc import AsyncIterator

from agents_app.strategies.base import AgentSpec, ChatMessage, last_user_text, words_of
from agents_app.tools import ToolBox


class EchoStrategy:
    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec

    async def stream_reply(self, messages: list[ChatMessage], tools: ToolBox) -> AsyncIterator[str]:
        heard = last_user_text(messages)
        for word in words_of(f"You said: {heard}" if heard else "I did not catch that."):
            yield word

    async def aclose(self) -> None:
        return None
