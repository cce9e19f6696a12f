"""The speech recognition protocol: 16 kHz PCM16 mono in, partial hypotheses, then a final."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

INPUT_RATE = 16000


@dataclass(frozen=True)
class Transcript:
    text: str
    confidence: float | None = None


@dataclass(frozen=True)
class TimedWord:
    """A recognised word and when it was said, in ms from the utterance's first sample."""

    text: str
    start_ms: float
    end_ms: float


class SpeechRecognizer(Protocol):
    """Recognises one utterance at a time; one recognizer per live session (engines may share
    a model and threads between sessions)."""

    async def start_utterance(self) -> None:
        """Begin a new utterance (the voice detector heard speech start)."""
        ...

    async def accept(self, pcm: bytes) -> str | None:
        """Feed 16 kHz audio of the utterance; return a new partial hypothesis, or None.
        An engine whose `accept` only buffers may also offer `accept_now(pcm)`, the same
        without awaiting (the recognition worker then hears speech outside its task)."""
        ...

    def pause(self) -> None:
        """The caller paused mid-utterance: an engine may start on the final early."""
        ...

    def resume(self) -> None:
        """The caller went on after a pause: work started for the final no longer covers it."""
        ...

    async def peek(self) -> str | None:
        """The words said up to the pause, if the engine decodes them early (else None): what
        the turn-taking reads to tell a finished sentence from one that hangs."""
        ...

    async def finish_utterance(self) -> Transcript:
        """The utterance ended; return what was said (text may be empty)."""
        ...

    async def word_timings(self) -> tuple[TimedWord, ...] | None:
        """When each word of the last final was said; None if the engine cannot tell. Asked
        only when needed (a recording must silence a digit run), so it may cost a decode."""
        ...

    async def aclose(self) -> None: ...
