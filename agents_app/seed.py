"""The agents a fresh install starts with: one per strategy."""

from __future__ import annotations

from typing import Any

SPOKEN = (
    "You are a helpful voice assistant. Answer in one or two short sentences: "
    "they are spoken aloud."
)
DEMO_TOOLS = ["order_status", "account_balance"]

SEED_AGENTS: list[dict[str, Any]] = [
    {"name": "echo", "strategy": "echo", "instructions": "", "tools": []},
    {"name": "rules", "strategy": "rules", "instructions": "", "tools": DEMO_TOOLS},
    {"name": "openai", "strategy": "openai", "instructions": SPOKEN, "tools": DEMO_TOOLS},
]


def seed_agents(agent_model: Any) -> None:
    """Create the seed agents that are missing (works with a migration's historical model)."""
    for fields in SEED_AGENTS:
        agent_model.objects.get_or_create(name=fields["name"], defaults=fields)
