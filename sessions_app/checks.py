"""System checks: the server refuses to start on settings that cannot work, with a clear message."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from agents_app.speech.stt import RECOGNIZERS
from agents_app.speech.tts import SYNTHESIZERS
from agents_app.speech.turn import TURN_MODELS
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
        ("TURN_MODEL", settings.TURN_MODEL, TURN_MODELS, "voice.E012"),
    ]
    return [
        Error(f"{name}={value!r} is not one of {sorted(known)}", id=check_id)
        for name, value, known, check_id in choices
        if value not in known
    ]


@register()
def check_telephony_settings(app_configs, **kwargs) -> list[CheckMessage]:
    """Telephony settings that cannot work stop the server; an unsigned setup is flagged."""
    from sessions_app.acs.calls import AUDIO_FORMATS

    problems: list[CheckMessage] = []
    if settings.ACS_AUDIO_FORMAT not in AUDIO_FORMATS:
        problems.append(
            Error(
                f"ACS_AUDIO_FORMAT={settings.ACS_AUDIO_FORMAT!r} is not one of "
                f"{sorted(AUDIO_FORMATS)}",
                id="voice.E006",
            )
        )
    base = settings.ACS_CALLBACK_BASE_URL
    if base and not base.startswith("https://"):
        problems.append(
            Error(
                f"ACS_CALLBACK_BASE_URL={base!r} must be a public https:// URL: ACS posts "
                "callbacks to it and streams media to its wss:// form",
                id="voice.E007",
            )
        )
    if settings.ACS_CONNECTION_STRING and not settings.ACS_VERIFY_JWT:
        problems.append(
            Warning(
                "ACS_VERIFY_JWT is off: anyone who learns a session id can post its callbacks "
                "and stream into its call; switch it off only for local testing",
                id="voice.W001",
            )
        )
    return problems


@register()
def check_speech_settings(app_configs, **kwargs) -> list[Error]:
    """The whisper model is installed and intact; pause and hangover fit together."""
    from agents_app.speech.stt.whisper_models import ModelFilesError, load_model_files

    problems = []
    if settings.STT_ENGINE == "whisper":
        try:
            load_model_files(settings.WHISPER_MODEL)
        except ModelFilesError as exc:
            problems.append(Error(str(exc), id="voice.E008"))
    if not 0 < settings.VAD_PAUSE_MS < settings.VAD_HANGOVER_MS:
        problems.append(
            Error(
                f"VAD_PAUSE_MS={settings.VAD_PAUSE_MS} must be above 0 and below "
                f"VAD_HANGOVER_MS={settings.VAD_HANGOVER_MS}: a pause comes before the end",
                id="voice.E009",
            )
        )
    if settings.STT_WORKERS < 1 or settings.STT_QUEUE_LIMIT < 1:
        problems.append(
            Error("STT_WORKERS and STT_QUEUE_LIMIT must be at least 1", id="voice.E010")
        )
    return problems


@register()
def check_turn_model_settings(app_configs, **kwargs) -> list[Error]:
    """With the end-of-turn model on, its file is installed and intact and its threshold is a
    probability."""
    from agents_app.speech.model_files import ModelFileError
    from agents_app.speech.turn.smart_turn import load_model_bytes

    if settings.TURN_MODEL != "smart_turn":
        return []
    problems = []
    try:
        load_model_bytes()
    except ModelFileError as exc:
        problems.append(Error(str(exc), id="voice.E011"))
    if not 0 < settings.TURN_MODEL_THRESHOLD < 1:
        problems.append(
            Error(
                f"TURN_MODEL_THRESHOLD={settings.TURN_MODEL_THRESHOLD} must be between 0 and 1",
                id="voice.E013",
            )
        )
    return problems


@register()
def check_vad_model(app_configs, **kwargs) -> list[Error]:
    """With a Silero VAD engine (silero, hybrid), its model file is installed and intact."""
    from agents_app.speech.model_files import ModelFileError
    from agents_app.speech.silero import load_model_bytes

    if settings.VAD_ENGINE not in ("silero", "hybrid"):
        return []
    try:
        load_model_bytes()
    except ModelFileError as exc:
        return [Error(str(exc), id="voice.E014")]
    return []
