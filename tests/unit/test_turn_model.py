"""The end-of-turn model: smart-turn v3.2 loaded from the pipecat-ai wheel, checked by hash,
run off the event loop; its answers on espeak speech (bench/turn_model.py has the figures)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import numpy as np
import pytest

from agents_app.errors import ProviderOverloaded, ProviderRejected
from agents_app.speech.turn import build_turn_model, smart_turn
from agents_app.speech.turn.smart_turn import PIP_INSTALL, SmartTurnModel
from sessions_app.checks import check_engine_settings, check_turn_model_settings
from tests.servers import REPO_ROOT
from tests.speech import noise, silence, speech_pcm

# Complete and unfinished sentences the model tells apart with a wide margin on espeak's flat
# prosody (measured ~0.91-0.98 against ~0.01-0.11 after 200 ms of silence).
ROBUST_PAIRS = [
    ("what's my balance", "I would like to check my"),
    ("I need to change my address", "I need to talk to"),
    ("can you help me with my account", "can you help me with"),
    ("yes that's right", "I called because"),
]
THRESHOLD = 0.5


def spoken(text: str, pause_ms: int = 200) -> bytes:
    return speech_pcm(text) + silence(pause_ms)


@pytest.fixture
def fresh_session(monkeypatch):
    """No session loaded yet in this process (the real one is put back afterwards)."""
    monkeypatch.setattr(smart_turn, "_session", None)


async def test_probabilities_are_between_zero_and_one():
    model = SmartTurnModel()
    clips = [spoken("what's my balance"), silence(1000), noise("pink", 1000), b""]
    for clip in clips:
        probability = await model.finished_probability(clip)
        assert isinstance(probability, float) and 0.0 <= probability <= 1.0


@pytest.mark.parametrize("complete,unfinished", ROBUST_PAIRS)
async def test_a_complete_sentence_scores_finished_and_an_unfinished_one_does_not(
    complete, unfinished
):
    model = SmartTurnModel()
    finished = await model.finished_probability(spoken(complete))
    cut_short = await model.finished_probability(spoken(unfinished))
    assert finished > THRESHOLD > cut_short, (complete, finished, unfinished, cut_short)


async def test_audio_longer_than_eight_seconds_is_judged_on_its_last_eight():
    ending = spoken("what's my balance")
    long_clip = noise("brown", 6000) + speech_pcm("I called because") + ending
    assert len(long_clip) > 2 * smart_turn.WINDOW_SAMPLES
    last_eight = long_clip[-2 * smart_turn.WINDOW_SAMPLES :]
    assert np.array_equal(smart_turn.features(long_clip), smart_turn.features(last_eight))
    probability = await SmartTurnModel().finished_probability(long_clip)
    assert 0.0 <= probability <= 1.0


def test_short_audio_is_padded_with_silence_at_the_start():
    clip = spoken("yes that's right")
    padded = silence(8000 - len(clip) // 32) + clip
    assert smart_turn.features(clip).shape == (80, 800)
    assert np.allclose(smart_turn.features(clip), smart_turn.features(padded), atol=1e-5)


async def test_the_event_loop_runs_while_the_model_loads_and_thinks(fresh_session):
    model = SmartTurnModel()
    for clip in (spoken("what's my balance"), spoken("I called because")):
        answer = asyncio.ensure_future(model.finished_probability(clip))
        ticks = 0
        while not answer.done():
            ticks += 1
            await asyncio.sleep(0.002)
        assert 0.0 <= answer.result() <= 1.0
        # Run on the loop, the call would finish within the first tick.
        assert ticks >= 3, f"the loop ran {ticks} times during a call"


async def test_a_tampered_model_file_is_refused_with_the_pip_command(
    fresh_session, monkeypatch, tmp_path
):
    tampered = tmp_path / "smart-turn-v3.2-cpu.onnx"
    tampered.write_bytes(smart_turn.model_path().read_bytes()[:-16] + b"\0" * 16)
    monkeypatch.setattr(smart_turn, "model_path", lambda: tampered)
    with pytest.raises(ProviderRejected) as refused:
        await SmartTurnModel().finished_probability(spoken("what's my balance"))
    assert PIP_INSTALL in str(refused.value) and "sha256" in str(refused.value)
    assert refused.value.code == "stt_rejected"
    assert smart_turn._session is None, "a refused file is not kept"


async def test_odd_bytes_are_rejected_and_a_full_queue_is_overloaded(monkeypatch):
    model = SmartTurnModel()
    with pytest.raises(ProviderRejected, match="16-bit"):
        await model.finished_probability(b"\0\0\0")
    monkeypatch.setattr(smart_turn, "_pending", threading.BoundedSemaphore(1))
    smart_turn._pending.acquire()
    with pytest.raises(ProviderOverloaded, match="overloaded") as overloaded:
        await model.finished_probability(silence(100))
    assert overloaded.value.retryable and overloaded.value.code == "stt_overloaded"


async def test_warm_up_loads_the_shared_session_in_the_background(fresh_session):
    SmartTurnModel.warm_up()
    for _ in range(600):
        if smart_turn._session is not None:
            break
        await asyncio.sleep(0.05)
    assert isinstance(smart_turn._session, smart_turn.SmartTurnSession)


def test_the_registry_builds_the_model_or_nothing():
    assert isinstance(build_turn_model("smart_turn"), SmartTurnModel)
    assert build_turn_model("none") is None
    with pytest.raises(ValueError, match="TURN_MODEL"):
        build_turn_model("psychic")


def test_the_model_runs_without_importing_pipecat():
    code = (
        "import asyncio, sys;"
        "from agents_app.speech.turn.smart_turn import SmartTurnModel;"
        "p = asyncio.run(SmartTurnModel().finished_probability(bytes(32000)));"
        "print(0 <= p <= 1, sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('pipecat', 'loguru')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split() == ["True", "[]"], done.stderr


def test_a_missing_model_file_is_a_system_check_error(settings, monkeypatch, tmp_path):
    monkeypatch.setattr(smart_turn, "model_path", lambda: tmp_path / "absent.onnx")
    settings.TURN_MODEL = "smart_turn"
    (error,) = check_turn_model_settings(None)
    assert error.id == "voice.E011" and PIP_INSTALL in error.msg
    settings.TURN_MODEL = "none"
    assert check_turn_model_settings(None) == []


def test_turn_model_settings_that_cannot_work_are_errors(settings):
    settings.TURN_MODEL = "smart_turn"
    assert check_turn_model_settings(None) == []
    settings.TURN_MODEL_THRESHOLD = 1.5
    (error,) = check_turn_model_settings(None)
    assert error.id == "voice.E013" and "TURN_MODEL_THRESHOLD" in error.msg
    settings.TURN_MODEL = "psychic"
    (error,) = check_engine_settings(None)
    assert error.id == "voice.E012" and "psychic" in error.msg
