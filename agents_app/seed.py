"""The agents a fresh install starts with: one per strategy."""

from __future__ import annotations

from typing import Any

SPOKEN = (
    "You are a helpful voice assistant. Answer in one or two short sentences: "
    "they are spoken aloud."
)
DEMO_TOOLS = ["order_status", "account_balance"]

# What the agents say first on a phone call (the echo agent waits for the caller).
GREETINGS = {
    "rules": "Hello! Press 1 for an order's status or 2 for your balance, or just say it.",
    "openai": "Hello! How can I help you today?",
}

SEED_AGENTS: list[dict[str, Any]] = [
    {"name": "echo", "strategy": "echo", "instructions": "", "tools": []},
    {"name": "rules", "strategy": "rules", "instructions": "", "tools": DEMO_TOOLS},
    {"name": "openai", "strategy": "openai", "instructions": SPOKEN, "tools": DEMO_TOOLS},
]


def seed_agents(agent_model: Any) -> None:
    """Create the seed agents that are missing (works with a migration's historical model)."""
    for fields in SEED_AGENTS:
        agent_model.objects.get_or_create(name=fields["name"], defaults=fields)
    if any(field.name == "greeting" for field in agent_model._meta.fields):  # migration 0004 on
        seed_greetings(agent_model)


def seed_greetings(agent_model: Any) -> None:
    """Give the seed agents of an earlier install their phone greeting, unless set."""
    for name, greeting in GREETINGS.items():
        agent_model.objects.filter(name=name, greeting="").update(greeting=greeting)
