"""System checks: the server refuses to start on settings that cannot work, with a clear message."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from agents_app.speech.stt import RECOGNIZERS
from agents_app.speech.tts import SYNTHESIZERS
from agents_app.strategies import STRATEGIES
from sessions_app.vad import VAD_ENGINES


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
def check_engine_settings(app_configs, **kwargs) -> list[Error]:
    """Each engine setting names an engine this server has."""
    choices = [
        ("AGENT_STRATEGY", settings.AGENT_STRATEGY, STRATEGIES, "voice.E002"),
        ("STT_ENGINE", settings.STT_ENGINE, RECOGNIZERS, "voice.E003"),
        ("TTS_ENGINE", settings.TTS_ENGINE, SYNTHESIZERS, "voice.E004"),
        ("VAD_ENGINE", settings.VAD_ENGINE, VAD_ENGINES, "voice.E005"),
    ]
    return [
        Error(f"{name}={value!r} is not one of {sorted(known)}", id=check_id)
        for name, value, known, check_id in choices
        if value not in known
    ]
