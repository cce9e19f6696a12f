"""System checks stop the server on engine settings it cannot honour, naming the setting."""

from __future__ import annotations

import pytest

from sessions_app.checks import (
    check_contracts,
    check_engine_settings,
    check_speech_settings,
    check_telephony_settings,
    check_vad_model,
)


def test_default_settings_pass():
    assert check_engine_settings(None) == []
    assert check_contracts(None) == []
    assert check_telephony_settings(None) == []
    assert check_speech_settings(None) == []
    assert check_vad_model(None) == []


@pytest.mark.parametrize(
    "name,check_id",
    [
        ("AGENT_STRATEGY", "voice.E002"),
        ("STT_ENGINE", "voice.E003"),
        ("TTS_ENGINE", "voice.E004"),
        ("VAD_ENGINE", "voice.E005"),
    ],
)
def test_unknown_engine_is_an_error(settings, name, check_id):
    setattr(settings, name, "nonsense")
    (error,) = check_engine_settings(None)
    assert error.id == check_id
    assert name in error.msg and "nonsense" in error.msg


@pytest.mark.parametrize(
    "name,value,check_id",
    [
        ("ACS_AUDIO_FORMAT", "mp3", "voice.E006"),
        ("ACS_CALLBACK_BASE_URL", "http://voice.example.test", "voice.E007"),
    ],
)
def test_telephony_settings_that_cannot_work_are_errors(settings, name, value, check_id):
    setattr(settings, name, value)
    (error,) = check_telephony_settings(None)
    assert (error.id, error.level) == (check_id, 40)
    assert name in error.msg and value in error.msg


def test_unsigned_telephony_is_a_warning(settings):
    settings.ACS_CONNECTION_STRING = "endpoint=https://acs.example.test/;accesskey=eA=="
    settings.ACS_VERIFY_JWT = False
    (warning,) = check_telephony_settings(None)
    assert warning.id == "voice.W001" and "ACS_VERIFY_JWT" in warning.msg


@pytest.mark.parametrize(
    "changes,check_id,named",
    [
        ({"STT_ENGINE": "whisper", "WHISPER_MODEL": "huge"}, "voice.E008", "WHISPER_MODEL"),
        ({"VAD_PAUSE_MS": 700, "VAD_HANGOVER_MS": 600}, "voice.E009", "VAD_PAUSE_MS"),
        ({"VAD_PAUSE_MS": 0}, "voice.E009", "VAD_PAUSE_MS"),
        ({"STT_WORKERS": 0}, "voice.E010", "STT_WORKERS"),
    ],
)
def test_speech_settings_that_cannot_work_are_errors(settings, changes, check_id, named):
    for name, value in changes.items():
        setattr(settings, name, value)
    (error,) = check_speech_settings(None)
    assert error.id == check_id
    assert named in error.msg


def test_a_whisper_model_whose_package_is_missing_names_the_pip_command(settings, monkeypatch):
    from agents_app.speech.stt import whisper_models

    missing = whisper_models.ModelSource(("no_such_pkg",), "no-such-pkg", "0" * 64, "model")
    monkeypatch.setitem(whisper_models.MODELS, "absent", missing)
    settings.STT_ENGINE, settings.WHISPER_MODEL = "whisper", "absent"

    (error,) = check_speech_settings(None)

    assert "pip install no-such-pkg" in error.msg


def test_a_missing_silero_model_is_an_error_naming_the_pip_command(settings, monkeypatch):
    from agents_app.speech import silero

    monkeypatch.setattr(silero, "MODEL_RELATIVE_PATH", "audio/vad/data/absent.onnx")
    (error,) = check_vad_model(None)
    assert error.id == "voice.E014" and silero.PIP_INSTALL in error.msg
    settings.VAD_ENGINE = "webrtc"
    assert check_vad_model(None) == []
