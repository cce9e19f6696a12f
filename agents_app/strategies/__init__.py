"""Agent strategies, chosen by name through a small registry."""

from __future__ import annotations

from collections.abc import Callable

from agents_app.strategies.base import AgentSpec, AgentStrategy
from agents_app.strategies.echo import EchoStrategy
from agents_app.strategies.openai import OpenAIStrategy, openai_unconfigured
from agents_app.strategies.rules import RulesStrategy

STRATEGIES: dict[str, Callable[[AgentSpec], AgentStrategy]] = {
    "echo": EchoStrategy,
    "rules": RulesStrategy,
    "openai": OpenAIStrategy,
}

# What a strategy needs that may be missing: a check naming it, None when all is there.
UNCONFIGURED: dict[str, Callable[[], str | None]] = {
    "openai": openai_unconfigured,
}


def unavailable_reason(strategy: str) -> str | None:
    """Why agents of `strategy` cannot answer on this server (not configured), or None."""
    check = UNCONFIGURED.get(strategy)
    return check() if check is not None else None


def build_strategy(spec: AgentSpec) -> AgentStrategy:
    try:
        factory = STRATEGIES[spec.strategy]
    except KeyError:
        raise ValueError(f"unknown agent strategy {spec.strategy!r}") from None
    return factory(spec)
