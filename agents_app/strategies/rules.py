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


ORDER_NUMBER_QUESTION = "Sure. What is the order number?"

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
        ORDER_NUMBER_QUESTION,
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
        "Hello! I can check an order's status or your account balance. "
        "On a phone, press 1 for an order or 2 for your balance.",
    ),
    Intent(
        "goodbye",
        re.compile(r"\b(bye|goodbye|thank you|thanks)\b", re.IGNORECASE),
        "You're welcome. Goodbye!",
    ),
)
# A phone keypad entry (sessions_app/pipeline/keypad.py): menu keys, or a number asked for.
KEYPAD_ENTRY = re.compile(r"[0-9*A-D]+")
KEYPAD_MENU = {"1": "order", "2": "balance"}
FALLBACK = "Sorry, I can check an order's status or your account balance. Which would you like?"
TOOL_FAILED = "Sorry, I could not look that up just now. Please try again."


class RulesStrategy:
    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec

    async def stream_reply(self, messages: list[ChatMessage], tools: ToolBox) -> AsyncIterator[str]:
        for word in words_of(await self._answer(understood(messages), tools)):
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


def understood(messages: list[ChatMessage]) -> str:
    """The caller's last words, with a keypad entry read as what it selects: a menu key, or
    the order number the agent just asked for."""
    text = last_user_text(messages).strip()
    if not KEYPAD_ENTRY.fullmatch(text):
        return text
    asked = next((m["content"] for m in reversed(messages) if m["role"] == "assistant"), "")
    if asked.startswith(ORDER_NUMBER_QUESTION):
        return f"order {text}"
    return KEYPAD_MENU.get(text, text)
