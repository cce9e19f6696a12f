"""The bounded conversation context an agent sees."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ContextTurn:
    user: str
    agent: str | None = None


@dataclass
class ContextWindow:
    """System instructions plus the last `turn_budget` turns; the oldest turns drop first.

    The instructions never drop. `dropped_turns` counts what fell out so that a truncation
    can be shown to the caller and recorded on the task.
    """

    instructions: str
    turn_budget: int
    turns: list[ContextTurn] = field(default_factory=list)
    dropped_turns: int = 0

    def add_user(self, text: str) -> int:
        """Start a turn with the caller's words; return how many old turns this dropped."""
        self.turns.append(ContextTurn(user=text))
        overflow = max(0, len(self.turns) - max(self.turn_budget, 1))
        if overflow:
            del self.turns[:overflow]
            self.dropped_turns += overflow
        return overflow

    def extend_user(self, text: str) -> None:
        """The caller went on with their last turn: it now reads `text`, and whatever the
        agent had begun to answer is forgotten."""
        if not self.turns:
            self.add_user(text)
            return
        self.turns[-1] = ContextTurn(user=text)

    def add_agent(self, text: str) -> None:
        """Record what the caller heard of the agent's reply to the current turn."""
        if self.turns and self.turns[-1].agent is None:
            self.turns[-1].agent = text
        else:
            self.turns.append(ContextTurn(user="", agent=text))

    def messages(self) -> list[dict[str, str]]:
        """Chat messages in the OpenAI shape, system instructions first."""
        out = [{"role": "system", "content": self.instructions}] if self.instructions else []
        for turn in self.turns:
            if turn.user:
                out.append({"role": "user", "content": turn.user})
            if turn.agent:
                out.append({"role": "assistant", "content": turn.agent})
        return out
