"""Offline recognition with Whisper (CTranslate2, through faster-whisper's tokenizer and
feature extractor), one model per process shared by every session.

Whisper decodes whole utterances, not streams, so:
- the final is one decode of the utterance when it ends; when the caller pauses, the decode
  starts at once (a speculative final), and if they do not go on, that result is the final;
- partials are extra decodes of the audio so far, started only while the pool has a thread
  to spare (see `RecognitionPool`), so they never delay anyone's final;
- Whisper pads every input to a 30 s window, which costs a full 30 s encoder pass for a two
  word answer. The window is cut to WHISPER_WINDOW_S (10 s; a longer utterance gets its own
  length), and a result that loops is decoded again in the full window (bench/stt_accuracy.py
  measured the windows);
- Whisper writes text on silence and noise ("Thank you."): a result the model itself thinks
  is no speech, or that holds no words, is dropped (`is_hallucination`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import threading
import zlib
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import numpy as np
from django.conf import settings

from agents_app.errors import (
    ProviderError,
    ProviderOverloaded,
    ProviderRejected,
    ProviderUnavailable,
)
from agents_app.speech.stt.base import INPUT_RATE, TimedWord, Transcript
from agents_app.speech.stt.jobs import Priority, RecognitionPool
from agents_app.speech.stt.whisper_models import ModelFilesError, load_model_files

logger = logging.getLogger(__name__)

FULL_WINDOW_S = 30
HOP_SAMPLES = 160  # one feature frame per 10 ms
# Silence after the audio in a trimmed window: Whisper expects its input to end in quiet.
TAIL_PAD_S = 0.5
MAX_NEW_TOKENS = 200
# How far below the no-speech threshold a result with improbable words still counts as none
# (measured: coughs 0.59-0.87, "uh huh" 0.49, other short words 0.08-0.39; bench/stt_accuracy.py).
DOUBT_MARGIN = 0.1
# Text that compresses better than this repeats itself ("stop stop stop…"): Whisper looping
# on a short window. faster-whisper's threshold; such a window is decoded again at full size.
MAX_COMPRESSION_RATIO = 2.4
# Whisper's cross-attention steps: one per two feature frames (20 ms).
ALIGNMENT_STEP_MS = 2 * HOP_SAMPLES / INPUT_RATE * 1000
# faster-whisper's smoothing of the alignment heads' attention (word_timestamps).
ALIGNMENT_MEDIAN_WIDTH = 7
# Non-speech annotations Whisper writes instead of words: [BLANK_AUDIO], (coughs), *sigh*, ♪.
_ANNOTATION = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*|♪+")
_WORD = re.compile(r"\w")
_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class DecoderOptions:
    beam_size: int = 5
    window_s: float = 0  # 0: fit the utterance; 30: Whisper's full window
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0

    @classmethod
    def from_settings(cls) -> DecoderOptions:
        return cls(
            beam_size=settings.WHISPER_BEAM_SIZE,
            window_s=settings.WHISPER_WINDOW_S,
            no_speech_threshold=settings.WHISPER_NO_SPEECH_THRESHOLD,
            log_prob_threshold=settings.WHISPER_LOG_PROB_THRESHOLD,
        )


@dataclass(frozen=True)
class Decoded:
    """One decode: the words, and the model's own view of whether they were speech."""

    text: str
    avg_logprob: float
    no_speech_prob: float


def is_hallucination(decoded: Decoded, options: DecoderOptions) -> bool:
    """Whisper writes "you", "Yeah." or "Thank you." for silence, noise and coughs, but then
    it also rates its no-speech token likely: above the threshold the text is dropped, and a
    little below it too when the words themselves are improbable. Text that holds no words
    once annotations like "(coughs)" are taken out is dropped as well."""
    doubtful = decoded.no_speech_prob > options.no_speech_threshold - DOUBT_MARGIN
    if decoded.no_speech_prob > options.no_speech_threshold or (
        doubtful and decoded.avg_logprob < options.log_prob_threshold
    ):
        return True
    return not _WORD.search(_ANNOTATION.sub("", decoded.text))


def is_repetitive(text: str) -> bool:
    """Whisper looping: text that compresses too well, or nothing but one phrase said again
    and again (three times, or twice for three words or more: "wait wait wait", "sorry to
    interrupt. sorry to interrupt."). A caller's own "no no no" only costs a re-decode."""
    encoded = text.encode()
    if len(encoded) > 24 and len(encoded) / len(zlib.compress(encoded)) > MAX_COMPRESSION_RATIO:
        return True
    words = _WORDS.findall(text.lower())
    return any(
        words == words[:size] * (len(words) // size) and (len(words) // size >= 3 or size >= 3)
        for size in range(1, len(words) // 2 + 1)
        if len(words) % size == 0
    )


def window_samples(audio_samples: int, window_s: float) -> int:
    """How many samples the encoder sees for an utterance: the audio and a quiet tail, at
    least `window_s`, at most Whisper's 30 s; a whole number of frame pairs."""
    wanted = max(audio_samples + TAIL_PAD_S * INPUT_RATE, window_s * INPUT_RATE)
    wanted = min(int(wanted), FULL_WINDOW_S * INPUT_RATE)
    pair = 2 * HOP_SAMPLES
    return -(-wanted // pair) * pair


class Decoder(Protocol):
    def transcribe(self, pcm: bytes) -> Transcript: ...

    def word_timings(self, pcm: bytes, text: str) -> tuple[TimedWord, ...] | None: ...


class WhisperDecoder:
    """A loaded model; `decode` may be called from several threads at once (up to `threads`
    run in parallel: CTranslate2 releases the GIL)."""

    def __init__(self, model_name: str, *, threads: int, options: DecoderOptions) -> None:
        import ctranslate2
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        files = load_model_files(model_name)
        self.options = options
        self._model = ctranslate2.models.Whisper(
            model_name,
            device="cpu",
            compute_type="int8",
            inter_threads=threads,
            intra_threads=1,
            files=files.files,
        )
        self._storage_view = ctranslate2.StorageView.from_array
        self._tokenizer = Tokenizer(
            tokenizers.Tokenizer.from_str(files.tokenizer_json.decode()),
            multilingual=self._model.is_multilingual,
            task="transcribe",
            language="en",
        )
        self._features = FeatureExtractor(feature_size=self._model.n_mels)
        self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        self._suppress = list(get_suppressed_tokens(self._tokenizer, [-1]))

    def transcribe(self, pcm: bytes) -> Transcript:
        """The words of one utterance (16 kHz PCM16), or empty text for no speech."""
        audio = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        step = FULL_WINDOW_S * INPUT_RATE
        pieces = [self.decode(audio[start : start + step]) for start in range(0, len(audio), step)]
        spoken = [piece for piece in pieces if not is_hallucination(piece, self.options)]
        if not spoken:
            return Transcript(text="")
        text = " ".join(piece.text for piece in spoken)
        logprob = sum(piece.avg_logprob for piece in spoken) / len(spoken)
        return Transcript(text=text, confidence=round(min(1.0, math.exp(logprob)), 3))

    def word_timings(self, pcm: bytes, text: str) -> tuple[TimedWord, ...] | None:
        """When each word of `text` was said in `pcm`, from the model's alignment heads (as
        faster-whisper's word_timestamps). Run only when asked, never for an ordinary turn;
        None past one 30 s window (the text of several windows cannot be split back)."""
        audio = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        tokens = self._tokenizer.encode(" " + text.strip())
        if not tokens or len(audio) > FULL_WINDOW_S * INPUT_RATE:
            return None
        window = window_samples(len(audio), self.options.window_s)
        features = self._features(np.pad(audio, (0, window - len(audio))), padding=0)
        aligned = self._model.align(
            self._storage_view(np.ascontiguousarray(features[None, :, : window // HOP_SAMPLES])),
            self._tokenizer.sot_sequence,
            [tokens],
            len(audio) // HOP_SAMPLES,
            median_filter_width=ALIGNMENT_MEDIAN_WIDTH,
        )[0]
        text_steps = np.array([pair[0] for pair in aligned.alignments])
        time_steps = np.array([pair[1] for pair in aligned.alignments])
        # Where the alignment moves on to the next token: each token's first time step.
        jumps = np.pad(np.diff(text_steps), (1, 0), constant_values=1).astype(bool)
        token_ms = time_steps[jumps] * ALIGNMENT_STEP_MS
        words, word_tokens = self._tokenizer.split_to_word_tokens([*tokens, self._tokenizer.eot])
        bounds = np.cumsum([0, *(len(group) for group in word_tokens)])
        if len(token_ms) <= bounds[-2]:
            return None
        return tuple(
            TimedWord(word.strip(), float(token_ms[start]), float(token_ms[end]))
            for word, start, end in zip(words[:-1], bounds[:-2], bounds[1:-1], strict=True)
        )

    def decode(self, audio: np.ndarray) -> Decoded:
        """One window of at most 30 s of float audio; a short window that makes Whisper loop
        is decoded again in the full window it was trained on."""
        decoded = self._decode(audio, window_samples(len(audio), self.options.window_s))
        if is_repetitive(decoded.text) and self.options.window_s < FULL_WINDOW_S:
            decoded = self._decode(audio, FULL_WINDOW_S * INPUT_RATE)
        return decoded

    def _decode(self, audio: np.ndarray, window: int) -> Decoded:
        padded = np.pad(audio, (0, window - len(audio)))
        features = self._features(padded, padding=0)[:, : window // HOP_SAMPLES]
        result = self._model.generate(
            self._storage_view(np.ascontiguousarray(features[None])),
            [self._prompt],
            beam_size=self.options.beam_size,
            max_length=len(self._prompt) + MAX_NEW_TOKENS,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        tokens = result.sequences_ids[0]
        # CTranslate2 scores are length-normalised; faster-whisper's average counts the end.
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        text = self._tokenizer.decode(tokens).strip()
        return Decoded(text=text, avg_logprob=avg_logprob, no_speech_prob=result.no_speech_prob)


class WhisperEngine:
    """The process's recognition service: one model, loaded on first use in a pool thread,
    and the priority pool every session's decodes go through."""

    def __init__(
        self,
        model_name: str,
        *,
        workers: int,
        max_queued: int,
        options: DecoderOptions,
        decoder: Decoder | None = None,
    ) -> None:
        self.model_name = model_name
        self.options = options
        self.pool = RecognitionPool(workers, max_queued, name="whisper")
        self._decoder = decoder
        self._loading = threading.Lock()

    def decoder(self) -> Decoder:
        """The model, loading it now if needed (blocking: call from a pool thread)."""
        with self._loading:
            if self._decoder is None:
                self._decoder = WhisperDecoder(
                    self.model_name, threads=self.pool.workers, options=self.options
                )
            return self._decoder

    def submit(self, priority: Priority, pcm: bytes) -> asyncio.Future[Transcript]:
        return self.pool.submit(priority, lambda: self._transcribe(pcm))

    def submit_alignment(
        self, pcm: bytes, text: str
    ) -> asyncio.Future[tuple[TimedWord, ...] | None]:
        return self.pool.submit(Priority.FINAL, lambda: self._align(pcm, text))

    def warm_up(self) -> None:
        """Load the model in the background, so the first caller does not wait for it."""
        threading.Thread(target=self._warm_up, name="whisper-load", daemon=True).start()

    def _warm_up(self) -> None:
        try:
            self.decoder()
        except Exception:
            logger.exception("whisper %s failed to load", self.model_name)

    def _align(self, pcm: bytes, text: str) -> tuple[TimedWord, ...] | None:
        try:
            return self.decoder().word_timings(pcm, text)
        except Exception:
            logger.exception("whisper could not align an utterance's words")
            return None

    def _transcribe(self, pcm: bytes) -> Transcript:
        try:
            return self.decoder().transcribe(pcm)
        except ModelFilesError as exc:
            raise ProviderRejected(str(exc), role="stt") from exc
        except Exception as exc:
            raise ProviderUnavailable(f"whisper failed: {exc}", role="stt") from exc


@cache
def _engine(model: str, workers: int, max_queued: int, options: DecoderOptions) -> WhisperEngine:
    return WhisperEngine(model, workers=workers, max_queued=max_queued, options=options)


def shared_engine() -> WhisperEngine:
    """The process's engine for the current settings (one per distinct configuration)."""
    return _engine(
        settings.WHISPER_MODEL,
        settings.STT_WORKERS,
        settings.STT_QUEUE_LIMIT,
        DecoderOptions.from_settings(),
    )


class WhisperRecognizer:
    """One session's utterances, decoded by the process's shared engine."""

    def __init__(self, engine: WhisperEngine | None = None) -> None:
        self._engine = engine or shared_engine()
        self._partial_every = INPUT_RATE * 2 * settings.STT_PARTIAL_INTERVAL_MS // 1000
        self._speculate = settings.STT_SPECULATIVE_FINAL
        self._audio = bytearray()
        self._partial: asyncio.Future[Transcript] | None = None
        self._partial_asked_at = 0  # bytes of audio when the last partial was asked for
        self._partial_shown = ""
        self._speculation: asyncio.Future[Transcript] | None = None
        self._last_final: tuple[bytes, str] = (b"", "")  # audio and text, for word_timings

    @staticmethod
    def warm_up() -> None:
        shared_engine().warm_up()

    async def start_utterance(self) -> None:
        self._reset()

    async def accept(self, pcm: bytes) -> str | None:
        """Keep the audio; return a partial finished since the last call (never waits for
        one), and ask for the next when it is due and a thread is spare."""
        self._audio += pcm
        partial = self._collect_partial()
        due = len(self._audio) - self._partial_asked_at >= self._partial_every
        if self._partial is None and due and self._engine.pool.could_take_partial():
            self._partial_asked_at = len(self._audio)
            self._partial = self._engine.submit(Priority.PARTIAL, bytes(self._audio))
        return partial

    def pause(self) -> None:
        """The caller paused: decode what they said so far now, as the likely final (unless
        the pool is full of finals: speculation is best effort, the final will queue)."""
        self._drop(self._speculation)
        self._speculation = None
        if self._speculate and self._audio:
            with contextlib.suppress(ProviderOverloaded):
                self._speculation = self._engine.submit(Priority.SPECULATIVE, bytes(self._audio))

    def resume(self) -> None:
        """They went on speaking: the speculative final no longer covers the utterance."""
        self._drop(self._speculation)
        self._speculation = None

    async def peek(self) -> str | None:
        """The speculative final's words, once decoded; None without one (or if it failed)."""
        speculation = self._speculation
        if speculation is None:
            return None
        await asyncio.wait([speculation])  # never cancels it: the final may still use it
        if speculation.cancelled() or speculation.exception() is not None:
            return None
        return speculation.result().text

    async def finish_utterance(self) -> Transcript:
        speculation, pcm = self._speculation, bytes(self._audio)
        self._speculation = None
        self._reset()
        self._last_final = (b"", "")
        if not pcm:
            return Transcript(text="")
        transcript = None
        if speculation is not None:
            try:
                transcript = await speculation
            except ProviderError:
                logger.debug("speculative final failed; decoding the utterance again")
        if transcript is None:
            transcript = await self._engine.submit(Priority.FINAL, pcm)
        self._last_final = (pcm, transcript.text)
        return transcript

    async def word_timings(self) -> tuple[TimedWord, ...] | None:
        """The last final's words aligned to its audio: one extra decoder pass, on demand."""
        pcm, text = self._last_final
        if not pcm or not text.strip():
            return None
        return await self._engine.submit_alignment(pcm, text)

    async def aclose(self) -> None:
        self._drop(self._speculation)
        self._speculation = None
        self._last_final = (b"", "")
        self._reset()

    def _collect_partial(self) -> str | None:
        future = self._partial
        if future is None or not future.done():
            return None
        self._partial = None
        if future.cancelled() or future.exception() is not None:
            return None  # partials are best effort: the final reports a real failure
        text = future.result().text
        if not text or text == self._partial_shown:
            return None
        self._partial_shown = text
        return text

    def _reset(self) -> None:
        self._drop(self._partial)
        self._partial = None
        self._audio.clear()
        self._partial_asked_at = 0
        self._partial_shown = ""

    @staticmethod
    def _drop(future: asyncio.Future[Transcript] | None) -> None:
        """Forget a job: unstarted, it never runs; running, its result is ignored."""
        if future is None:
            return
        if not future.cancel() and not future.cancelled():
            future.exception()  # retrieved, so a failure is not logged as never seen
