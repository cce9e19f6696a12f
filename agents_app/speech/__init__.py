"""Speech engines: recognition (stt/) and synthesis (tts/), each behind a small protocol."""

from __future__ import annotations

from importlib import import_module
from typing import Any


def engine_class(registry: dict[str, str | None], setting: str, engine: str) -> type | None:
    """The class a registry names for `engine` ("module:Class"), imported on first use so
    unused engines cost nothing; None for an engine that is deliberately absent (`none`)."""
    if engine not in registry:
        raise ValueError(f"unknown {setting} {engine!r}; expected one of {sorted(registry)}")
    target = registry[engine]
    if target is None:
        return None
    module, name = target.split(":")
    cls: Any = getattr(import_module(module), name)
    return cls


def warm_up_engine(registry: dict[str, str | None], setting: str, engine: str) -> None:
    """Load an engine's process-wide model in the background now, so the first caller does
    not wait for it; engines without one (and unknown names, which the system checks report)
    have nothing to do."""
    try:
        cls = engine_class(registry, setting, engine)
    except ValueError:
        return
    warm_up = getattr(cls, "warm_up", None)
    if warm_up is not None:
        warm_up()
