"""System checks: the server refuses to start on settings that cannot work, with a clear message."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from agents_app.strategies import STRATEGIES


@register()
def check_contracts(app_configs, **kwargs) -> list[Error]:
    from sessions_app.contracts import schema_names, validator

    try:
        for name in schema_names():
            validator(name)
    except Exception as exc:  # a broken schema file must stop the server, with its reason
        return [Error(f"contracts/ does not load: {exc}", id="voice.E001")]
    return []


@register()
def check_agent_strategy(app_configs, **kwargs) -> list[Error]:
    if settings.AGENT_STRATEGY not in STRATEGIES:
        return [
            Error(
                f"AGENT_STRATEGY={settings.AGENT_STRATEGY!r} is not one of {sorted(STRATEGIES)}",
                id="voice.E002",
            )
        ]
    return []
