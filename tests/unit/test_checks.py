"""System checks stop the server on engine settings it cannot honour, naming the setting."""

from __future__ import annotations

import pytest

from sessions_app.checks import check_contracts, check_engine_settings


def test_default_settings_pass():
    assert check_engine_settings(None) == []
    assert check_contracts(None) == []


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
