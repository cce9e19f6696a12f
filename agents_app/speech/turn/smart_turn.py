"""smart-turn v3.2 (BSD-2-Clause): an ONNX model that hears whether a caller has finished.

The ~9 MB model ships inside the `pipecat-ai` 1.14 wheel. Its file is read from the installed
package without importing pipecat (that would start pipecat's runtime and its own logging) and
checked by hash, so a missing or different file is a clear error naming the pip command, at
startup (system check voice.E011) or on first use. Nothing is downloaded.

The model sees the last 8 s of 16 kHz audio as Whisper log-mel features and answers with a
probability (its output is already a sigmoid). One onnxruntime session serves the process,
loaded on first use in a worker thread; calls (~40-60 ms on one core, bench/turn_model.py) run
in a small pool of threads, never on the event loop, with a bound on how many may wait.
Failures are `ProviderError`s of role "stt": the turn model is part of hearing the caller, and
the error-event codes stay those of contracts/.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from agents_app.errors import ProviderOverloaded, ProviderRejected, ProviderUnavailable
from agents_app.speech.model_files import ModelFileError, packaged_file, read_verified

logger = logging.getLogger(__name__)

MODEL_PACKAGE = "pipecat"
MODEL_RELATIVE_PATH = "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
PIP_INSTALL = "pip install pipecat-ai==1.14.0"
SAMPLE_RATE = 16000
WINDOW_SAMPLES = 8 * SAMPLE_RATE  # the model hears the last 8 s
FEATURE_FRAMES = 800  # one per 10 ms
MEL_BINS = 80
# Two sessions' questions answered at once; more wait, at most MAX_PENDING in all (~200 ms).
WORKERS = 2
MAX_PENDING = 8


def model_path() -> Path:
    """Where the installed pipecat-ai wheel keeps the model (found without importing it)."""
    return packaged_file(MODEL_PACKAGE, MODEL_RELATIVE_PATH, PIP_INSTALL)


def load_model_bytes() -> bytes:
    """The model file, read once and verified."""
    return read_verified(model_path(), MODEL_SHA256, "the smart-turn model", PIP_INSTALL)


@cache
def _feature_extractor() -> Any:
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor(feature_size=MEL_BINS, chunk_length=WINDOW_SAMPLES // SAMPLE_RATE)


def features(pcm: bytes) -> np.ndarray:
    """The model's input for one utterance (16 kHz PCM16): its last 8 s (shorter audio padded
    with silence at the start), normalised to zero mean and unit variance, as log-mel."""
    audio = np.frombuffer(pcm, dtype=np.int16)[-WINDOW_SAMPLES:].astype(np.float32) / 32768.0
    audio = np.pad(audio, (WINDOW_SAMPLES - len(audio), 0))
    audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    mel = _feature_extractor()(audio, padding=0)[:, :FEATURE_FRAMES]
    return mel.astype(np.float32)


class SmartTurnSession:
    """A loaded model; `probabilities` may be called from several threads at once."""

    def __init__(self, model: bytes, *, threads: int = 1) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self._session = onnxruntime.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )

    def probabilities(self, utterances: Sequence[bytes]) -> list[float]:
        """For each utterance, how likely the caller has finished (one batched run)."""
        batch = np.stack([features(pcm) for pcm in utterances])
        (finished,) = self._session.run(["logits"], {"input_features": batch})
        return [float(np.clip(value, 0.0, 1.0)) for value in finished[:, 0]]


_loading = threading.Lock()
_session: SmartTurnSession | None = None
_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="smart-turn")
_pending = threading.BoundedSemaphore(MAX_PENDING)


def shared_session() -> SmartTurnSession:
    """The process's session, loading it now if needed (blocking: call from a worker thread)."""
    global _session
    with _loading:
        if _session is None:
            _session = SmartTurnSession(load_model_bytes())
        return _session


def _finished_probability(pcm: bytes) -> float:
    try:
        return shared_session().probabilities([pcm])[0]
    except ModelFileError as exc:
        raise ProviderRejected(str(exc), role="stt") from exc
    except Exception as exc:
        raise ProviderUnavailable(f"smart-turn failed: {exc}", role="stt") from exc


def _warm_up() -> None:
    try:
        shared_session()
    except Exception:
        logger.exception("the smart-turn model failed to load")


class SmartTurnModel:
    """The end-of-turn model for one session, answered by the process's shared session."""

    @staticmethod
    def warm_up() -> None:
        """Load the model in the background, so the first caller does not wait for it."""
        threading.Thread(target=_warm_up, name="smart-turn-load", daemon=True).start()

    async def finished_probability(self, pcm: bytes) -> float:
        if len(pcm) % 2:
            raise ProviderRejected("turn model audio must be whole 16-bit samples", role="stt")
        if not _pending.acquire(blocking=False):
            raise ProviderOverloaded("the end-of-turn model is overloaded", role="stt")
        try:
            job = _pool.submit(_finished_probability, pcm)
        except BaseException:
            _pending.release()
            raise
        job.add_done_callback(lambda _: _pending.release())
        # Cancelling the await drops a job that has not started yet.
        return await asyncio.wrap_future(job)
