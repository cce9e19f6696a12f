"""End-of-turn models, chosen by TURN_MODEL through a small registry: given the caller's audio
so far, how likely it is that they have finished speaking (README "End of turn model")."""

from __future__ import annotations

from typing import Protocol

from agents_app.speech import engine_class, warm_up_engine

TURN_MODELS = {
    "smart_turn": "agents_app.speech.turn.smart_turn:SmartTurnModel",
    "none": None,
}


class TurnModel(Protocol):
    async def finished_probability(self, pcm: bytes) -> float:
        """0..1, how likely the caller has finished their turn, from the utterance so far
        (16 kHz PCM16 mono, any length). Failures raise agents_app.errors.ProviderError."""
        ...


def build_turn_model(name: str) -> TurnModel | None:
    """The end-of-turn model for one session, or None for `none` (silence alone ends turns)."""
    cls = engine_class(TURN_MODELS, "TURN_MODEL", name)
    return None if cls is None else cls()


def warm_up_turn_model(name: str) -> None:
    """Load the TURN_MODEL engine's shared model in the background (see `warm_up_engine`)."""
    warm_up_engine(TURN_MODELS, "TURN_MODEL", name)
