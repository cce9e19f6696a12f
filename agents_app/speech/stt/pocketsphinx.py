"""Offline streaming recognition with pocketsphinx and the US English model in its wheel.

Pocketsphinx holds the GIL while it works, so every call runs on one engine thread that all
recognizers in the process share:
- more threads would add no throughput, only contention for the GIL;
- one FIFO thread keeps each recognizer's calls in order without a lock;
- the pool of idle decoders is touched only on that thread, so it needs no lock either.
The event loop still pauses while a call holds the GIL, so audio is decoded in 60 ms blocks: a
third of the executor hops of 20 ms frames, and loop pauses of at most ~35 ms (~90 ms for 100 ms).
A decoder costs ~90 MB and ~300 ms to create (the whole process stalls meanwhile), so decoders
are pooled and held per utterance, never per session: a recognizer takes one when an utterance
starts and hands it back when it ends, keeping only its caller's channel estimate (the cepstral
mean, a few numbers) for its next utterance. A process needs as many decoders as callers speak
at once, not as many as it has sessions.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pocketsphinx import Decoder

from agents_app.errors import ProviderUnavailable
from agents_app.speech.audio import frame_bytes
from agents_app.speech.stt.base import INPUT_RATE, TimedWord, Transcript

logger = logging.getLogger(__name__)

BLOCK_MS = 60
PARTIAL_EVERY_MS = 300
# Idle decoders kept for the next utterances; each holds ~90 MB.
IDLE_DECODERS = 4

T = TypeVar("T")

# A segment names the pronunciation it matched: "to(2)".
_PRONUNCIATION = re.compile(r"\(\d+\)$")

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pocketsphinx")


class _Decoding:
    """One decoder and whether it is inside an utterance; use only on the engine thread."""

    def __init__(self) -> None:
        # fwdflat re-decodes the utterance in end_utt, ~100 ms under the GIL, for no gain here.
        self.decoder = Decoder(samprate=INPUT_RATE, fwdflat=False, loglevel="FATAL")
        self.initial_cmn = self.decoder.get_cmn()
        self.in_utterance = False
        self.words: tuple[TimedWord, ...] = ()  # the last finished utterance's

    def begin(self) -> None:
        """Start an utterance, dropping one left open."""
        if self.in_utterance:
            self.decoder.end_utt()
        self.decoder.start_utt()
        self.in_utterance = True

    def feed(self, pcm: bytes, want_hypothesis: bool) -> str:
        """Decode a block; with `want_hypothesis`, the best text so far."""
        if not self.in_utterance:
            self.begin()
        self.decoder.process_raw(pcm, False, False)
        return self._text() if want_hypothesis else ""

    def start(self, cmn: str | None) -> None:
        """Start an utterance of a caller whose channel estimate so far is `cmn` (None: new)."""
        if cmn is not None:
            self.decoder.set_cmn(cmn)
        self.begin()

    def finish(self, pcm: bytes) -> Transcript:
        """Decode the last audio, end the utterance and return what it said."""
        self.words = ()
        if not self.in_utterance and not pcm:
            return Transcript(text="")
        if not self.in_utterance:
            self.begin()
        if pcm:
            self.decoder.process_raw(pcm, False, False)
        self.decoder.end_utt()
        self.in_utterance = False
        text = self._text()
        self.words = tuple(
            TimedWord(
                _PRONUNCIATION.sub("", segment.word),
                segment.start_frame * 10,  # frames are 10 ms
                (segment.end_frame + 1) * 10,
            )
            for segment in (self.decoder.seg() if text else ())
            if not segment.word.startswith(("<", "[", "+"))
        )
        return Transcript(text=text, confidence=self._confidence() if text else None)

    def reset(self) -> None:
        """Forget the last session: its open utterance and its channel (the cepstral mean)."""
        if self.in_utterance:
            self.decoder.end_utt()
            self.in_utterance = False
        self.decoder.set_cmn(self.initial_cmn)

    def _text(self) -> str:
        hypothesis = self.decoder.hyp()
        return hypothesis.hypstr.strip() if hypothesis is not None else ""

    def _confidence(self) -> float | None:
        # The binding gives posteriors (not logs); the utterance's shrinks with every word.
        posteriors = [
            min(max(segment.prob, 0.0), 1.0)
            for segment in self.decoder.seg()
            if not segment.word.startswith(("<", "[", "+"))
        ]
        return sum(posteriors) / len(posteriors) if posteriors else None


_idle: list[_Decoding] = []


def _acquire() -> _Decoding:
    """An idle decoder, or a new one (engine thread)."""
    return _idle.pop() if _idle else _Decoding()


def _release(decoding: _Decoding) -> None:
    """Keep a session's decoder for the next session, if there is room (engine thread)."""
    try:
        decoding.reset()
    except Exception:
        logger.warning("dropping a pocketsphinx decoder that failed to reset", exc_info=True)
        return
    if len(_idle) < IDLE_DECODERS:
        _idle.append(decoding)


class PocketsphinxRecognizer:
    """Offline US English recognition for one session, decoded on the shared engine thread."""

    def __init__(self) -> None:
        self._decoding: _Decoding | None = None  # held during an utterance only
        self._cmn: str | None = None  # this caller's channel, carried between utterances
        self._pending = bytearray()
        self._unchecked_ms = 0
        self._partial = ""
        self._words: tuple[TimedWord, ...] | None = None  # the last final's

    async def start_utterance(self) -> None:
        self._reset_stream()
        decoding = await self._decoding_ready()
        await self._call(decoding.start, self._cmn)

    async def accept(self, pcm: bytes) -> str | None:
        """Decode whole blocks; every PARTIAL_EVERY_MS of audio, return the text if it changed."""
        self._pending += pcm
        block = frame_bytes(INPUT_RATE, BLOCK_MS)
        latest = None
        while len(self._pending) >= block:
            chunk = bytes(self._pending[:block])
            del self._pending[:block]
            self._unchecked_ms += BLOCK_MS
            want_hypothesis = self._unchecked_ms >= PARTIAL_EVERY_MS
            decoding = await self._decoding_ready()
            text = await self._call(decoding.feed, chunk, want_hypothesis)
            if want_hypothesis:
                self._unchecked_ms = 0
                latest = text
        if not latest or latest == self._partial:
            return None
        self._partial = latest
        return latest

    def pause(self) -> None:
        """Nothing to start early: the decoder has kept up with the audio all along."""

    def resume(self) -> None:
        """See `pause`."""

    async def peek(self) -> str | None:
        """Pocketsphinx decodes no early final."""
        return None

    async def finish_utterance(self) -> Transcript:
        pcm = bytes(self._pending)
        self._reset_stream()
        self._words = None
        if self._decoding is None and not pcm:
            return Transcript(text="")
        decoding = await self._decoding_ready()
        transcript = await self._call(decoding.finish, pcm)
        self._words = decoding.words  # the decoder goes back to the pool
        self._cmn = await self._call(decoding.decoder.get_cmn)
        await self._give_back()
        return transcript

    async def word_timings(self) -> tuple[TimedWord, ...] | None:
        """The last final's word segments (pocketsphinx keeps them with every decode)."""
        return self._words

    async def aclose(self) -> None:
        """Hand a decoder still held back to the pool; the recognizer may be used again."""
        self._reset_stream()
        await self._give_back()

    async def _give_back(self) -> None:
        decoding, self._decoding = self._decoding, None
        if decoding is not None:
            await asyncio.get_running_loop().run_in_executor(_executor, _release, decoding)

    def _reset_stream(self) -> None:
        self._pending.clear()
        self._unchecked_ms = 0
        self._partial = ""

    async def _decoding_ready(self) -> _Decoding:
        if self._decoding is None:
            self._decoding = await self._call(_acquire)
        return self._decoding

    async def _call(self, work: Callable[..., T], *args: object) -> T:
        """Run `work` on the engine thread, turning pocketsphinx's failures into ours."""
        try:
            return await asyncio.get_running_loop().run_in_executor(_executor, work, *args)
        except Exception as exc:
            self._decoding = None  # its state is unknown now: never reuse or pool it
            raise ProviderUnavailable(f"pocketsphinx failed: {exc}", role="stt") from exc
