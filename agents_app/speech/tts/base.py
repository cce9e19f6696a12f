"""The speech synthesis protocol: text in, PCM16 mono out, with the time each word starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class WordMark:
    """A word of the synthesised text and when its sound starts in the clip."""

    start: int  # character offset in the text
    end: int
    audio_ms: int


@dataclass
class SpeechClip:
    text: str
    pcm: bytes
    sample_rate: int
    words: list[WordMark] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate * 1000

    def heard_text(self, played_ms: float) -> str:
        """The words whose sound had started by `played_ms` into the clip."""
        heard = [word for word in self.words if word.audio_ms < played_ms]
        return self.text[: heard[-1].end] if heard else ""


class SpeechSynthesizer(Protocol):
    async def synthesize(self, text: str) -> SpeechClip:
        """Speak `text`; CPU-bound engines run off the event loop."""
        ...

    async def aclose(self) -> None: ...
