"""The rules agent: a small intent table, some of whose intents call a tool."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from agents_app.strategies.base import AgentSpec, ChatMessage, last_user_text, words_of
from agents_app.tools import ToolBox


@dataclass(frozen=True)
class Intent:
    name: str
    pattern: re.Pattern[str]
    reply: str
    tool: str | None = None


INTENTS = (
    Intent(
        "order_status",
        re.compile(r"\border\b\D*(?P<order_id>\d[\d-]{2,})", re.IGNORECASE),
        "Order {order_id} is {status}.",
        tool="order_status",
    ),
    Intent(
        "order_number_needed",
        re.compile(r"\border\b", re.IGNORECASE),
        "Sure. What is the order number?",
    ),
    Intent(
        "account_balance",
        re.compile(r"\bbalance\b", re.IGNORECASE),
        "Your balance is {balance} {currency}.",
        tool="account_balance",
    ),
    Intent(
        "greeting",
        re.compile(r"\b(hello|hi|hey|good (morning|afternoon|evening))\b", re.IGNORECASE),
        "Hello! I can check an order's status or your account balance.",
    ),
    Intent(
        "goodbye",
        re.compile(r"\b(bye|goodbye|thank you|thanks)\b", re.IGNORECASE),
        "You're welcome. Goodbye!",
    ),
)
FALLBACK = "Sorry, I can check an order's status or your account balance. Which would you like?"
TOOL_FAILED = "Sorry, I could not look that up just now. Please try again."


class RulesStrategy:
    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec

    async def stream_reply(self, messages: list[ChatMessage], tools: ToolBox) -> AsyncIterator[str]:
        for word in words_of(await self._answer(last_user_text(messages), tools)):
            yield word

    async def _answer(self, text: str, tools: ToolBox) -> str:
        for intent in INTENTS:
            match = intent.pattern.search(text)
            if not match or (intent.tool and intent.tool not in tools.tools):
                continue
            if intent.tool is None:
                return intent.reply
            result = await tools.call(intent.tool, match.groupdict())
            return TOOL_FAILED if "error" in result else intent.reply.format(**result)
        return FALLBACK

    async def aclose(self) -> None:
        return None
