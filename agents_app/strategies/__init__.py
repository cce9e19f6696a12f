"""Agent strategies, chosen by name through a small registry."""

from __future__ import annotations

from collections.abc import Callable

from agents_app.strategies.base import AgentSpec, AgentStrategy
from agents_app.strategies.echo import EchoStrategy
from agents_app.strategies.openai import OpenAIStrategy
from agents_app.strategies.rules import RulesStrategy

STRATEGIES: dict[str, Callable[[AgentSpec], AgentStrategy]] = {
    "echo": EchoStrategy,
    "rules": RulesStrategy,
    "openai": OpenAIStrategy,
}


def build_strategy(spec: AgentSpec) -> AgentStrategy:
    try:
        factory = STRATEGIES[spec.strategy]
    except KeyError:
        raise ValueError(f"unknown agent strategy {spec.strategy!r}") from None
    return factory(spec)
