"""Turn-taking: who holds the floor, decided from voice activity, words and stream time.

A plain object with no sockets, models or clock of its own: the conversation feeds it what the
voice detector, the recognizer and the end-of-turn model report, with the time in ms of caller
audio, and carries out the commands it answers with.

- The agent falls silent at the first voiced evidence (`PauseReply`); a false alarm resumes
  it (`ResumeReply`). Confirmed speech over the reply is an *interjection*: it ends at its
  first pause so that its words can decide — acknowledgements only ("mhm", "okay") resume the
  reply, anything else, a non-acknowledgement in a partial, or speech longer than a
  backchannel cuts it (`CutReply`).
- The caller's turn ends when, at a pause, the end-of-turn model (or the transcript's own
  punctuation) says it is finished and its last word does not hang ("and", "to", "um"); else
  at the longest silence, or at the longest utterance.
- A caller who goes on within `continuation_ms` of the end of their turn continues it: the
  reply just started is dropped and the agent answers the whole.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Literal

from django.conf import settings

EndReason = Literal["model", "words", "silence", "max_length", "interjection"]

# Words after which nobody stops: a turn ending on one is waited for.
HANGING_WORDS = frozenset(
    {
        "and",
        "or",
        "but",
        "so",
        "because",
        "to",
        "of",
        "for",
        "with",
        "the",
        "a",
        "an",
        "my",
        "your",
        "our",
        "their",
        "his",
        "her",
        "its",
        "that",
        "which",
        "who",
        "if",
        "then",
        "um",
        "uh",
        "er",
        "erm",
        "like",
        "is",
        "are",
        "was",
        "were",
        "am",
    }
)
_WORDS = re.compile(r"[a-z']+")
# "mhm", "mm-hmm", "hmm", "mmm": however a recognizer spells the hum of assent.
_HUM = re.compile(r"^(m+h*m*|h+m+|m+h+m+)$")
_COMPLETE = re.compile(r"[.!?]\s*$")


@dataclass(frozen=True)
class EndOfTurn:
    """Why the caller's turn ended, after how much silence, and the model's word on it."""

    reason: EndReason
    silence_ms: int
    probability: float | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "reason": self.reason,
            "silence_ms": self.silence_ms,
            "probability": self.probability,
        }


@dataclass(frozen=True)
class PauseReply:
    pass


@dataclass(frozen=True)
class ResumeReply:
    pass


@dataclass(frozen=True)
class CutReply:
    source: Literal["speech", "continuation"]


@dataclass(frozen=True)
class CheckTurnEnd:
    """Ask the end-of-turn model (and the recognizer's speculative words) about the pause
    that began at `paused_at_ms`."""

    paused_at_ms: int


@dataclass(frozen=True)
class EndUtterance:
    end: EndOfTurn


@dataclass(frozen=True)
class ContinueUtterance:
    """The speech starting now goes on with the caller's last turn: recognise it together
    with that turn's audio, so the words are decoded as one sentence."""


@dataclass(frozen=True)
class AnswerHeld:
    """The caller stayed silent after a turn that ended on a hanging word: answer it now."""


Command = (
    PauseReply
    | ResumeReply
    | CutReply
    | CheckTurnEnd
    | EndUtterance
    | ContinueUtterance
    | AnswerHeld
)


class Verdict(enum.Enum):
    """What a final transcript is, for the conversation."""

    TURN = "turn"  # the caller's turn: store it, answer it
    BACKCHANNEL = "backchannel"  # an acknowledgement over the reply: store it, the reply goes on
    NOISE = "noise"  # no words: nothing to store
    HELD = "held"  # a turn that ended on a hanging word: store it, answer after a silence
    CONTINUATION = "continuation"  # more of the caller's last turn: join it, answer the whole


@dataclass(frozen=True)
class Heard:
    """What a final transcript is, whether the agent answers now, and what else follows."""

    verdict: Verdict
    answer: bool = False
    end: EndOfTurn | None = None
    commands: list[Command] = field(default_factory=list)


def words_of(text: str) -> list[str]:
    return _WORDS.findall(text.lower().replace("-", " "))


@dataclass(frozen=True)
class TurnTakingConfig:
    backchannels: tuple[tuple[str, ...], ...]  # acknowledgement phrases, as word tuples
    backchannel_max_ms: int
    max_silence_ms: int  # the detector's hangover: the longest wait after a pause
    pause_ms: int  # the detector's pause: when the model is asked
    continuation_ms: int
    max_utterance_ms: int
    model_threshold: float
    # An interjection the recognizer itself doubts (a murmur it spelled as words) lets the
    # reply go on like an acknowledgement; clear words cut it.
    min_interjection_confidence: float = 0.0

    @classmethod
    def from_settings(cls) -> TurnTakingConfig:
        return cls(
            backchannels=tuple(tuple(words_of(phrase)) for phrase in settings.BACKCHANNELS),
            backchannel_max_ms=settings.BACKCHANNEL_MAX_MS,
            max_silence_ms=settings.VAD_HANGOVER_MS,
            pause_ms=settings.VAD_PAUSE_MS,
            continuation_ms=settings.CONTINUATION_MS,
            max_utterance_ms=settings.MAX_UTTERANCE_S * 1000,
            model_threshold=settings.TURN_MODEL_THRESHOLD,
            min_interjection_confidence=settings.INTERJECTION_MIN_CONFIDENCE,
        )

    def only_acknowledges(self, text: str) -> bool:
        """The text is nothing but acknowledgements ("okay", "mhm, right", "uh huh")."""
        remaining = [word for word in words_of(text) if not _HUM.match(word)]
        while remaining:
            match = next(
                (
                    phrase
                    for phrase in self.backchannels
                    if tuple(remaining[: len(phrase)]) == phrase
                ),
                None,
            )
            if match is None:
                return False
            remaining = remaining[len(match) :]
        return True

    def could_acknowledge(self, text: str) -> bool:
        """Every word so far belongs to some acknowledgement (a partial may still become one)."""
        known = {word for phrase in self.backchannels for word in phrase}
        return all(word in known or _HUM.match(word) for word in words_of(text))


class TurnTaker:
    """One session's turn-taking state; every method returns the commands to carry out."""

    def __init__(self, config: TurnTakingConfig) -> None:
        self.config = config
        self._reply: Literal["none", "playing", "paused"] = "none"
        self._speech_from: int | None = None  # where the caller's current utterance began
        self._paused_from: int | None = None  # where their current pause began
        self._interjection = False  # the utterance began over the reply
        self._interjection_ms = 0  # how long it was voiced before its pause
        self._continuing = False  # the utterance continues the caller's last turn
        self._turn_ended_at: int | None = None  # the end of the last answered turn
        self._held_since: int | None = None  # a held turn waits for more since then
        self._ending: EndOfTurn | None = None  # how the utterance being finished ended

    # --- the agent ------------------------------------------------------------------------

    def reply_started(self) -> list[Command]:
        self._reply = "playing"
        return []

    def reply_ended(self) -> list[Command]:
        """The reply completed, or was cut (by the caller or from elsewhere)."""
        self._reply = "none"
        return []

    # --- the voice detector ---------------------------------------------------------------

    def speech_suspected(self, at_ms: int) -> list[Command]:
        return self._pause_reply()

    def speech_dismissed(self, at_ms: int) -> list[Command]:
        if self._reply == "paused" and self._speech_from is None:
            self._reply = "playing"
            return [ResumeReply()]
        return []

    def speech_started(self, from_ms: int) -> list[Command]:
        commands = self._pause_reply()
        self._speech_from, self._paused_from = from_ms, None
        self._interjection = False
        if self._held_since is not None:
            self._held_since, self._continuing = None, True
            commands.append(ContinueUtterance())
        elif self._reply == "paused" and self._within_continuation(from_ms):
            self._reply, self._continuing = "none", True
            commands += [CutReply("continuation"), ContinueUtterance()]
        elif self._reply == "paused":
            self._interjection = True
        return commands

    def speech_paused(self, from_ms: int) -> list[Command]:
        """The caller has been quiet for `pause_ms` since `from_ms`."""
        self._paused_from = from_ms
        if self._interjection:
            self._interjection_ms = from_ms - (self._speech_from or from_ms)
            return self._end(EndOfTurn("interjection", self.config.pause_ms))
        return [CheckTurnEnd(from_ms)]

    def speech_resumed(self, at_ms: int) -> list[Command]:
        self._paused_from = None
        return []

    def silence_limit(self) -> list[Command]:
        """The detector's hangover ran out: the longest silence a turn may hold."""
        if self._speech_from is None:
            return []
        return self._end(EndOfTurn("silence", self.config.max_silence_ms))

    @property
    def runs_a_clock(self) -> bool:
        """Whether `audio` can have anything to say: a held answer or speech is being timed."""
        return self._held_since is not None or self._speech_from is not None

    def audio(self, now_ms: int) -> list[Command]:
        """Time passes (each chunk of caller audio): limits that run on the clock."""
        if self._held_since is not None and now_ms - self._held_since >= self.config.max_silence_ms:
            self._held_since = None
            self._turn_ended_at = now_ms
            return [AnswerHeld()]
        if self._speech_from is None:
            return []
        spoken = now_ms - self._speech_from
        # Still no pause this long after the start: voiced for longer than a backchannel.
        backchannel_over = self.config.backchannel_max_ms + self.config.pause_ms
        if self._interjection and self._paused_from is None and spoken > backchannel_over:
            return self._cut_for_speech()
        if spoken >= self.config.max_utterance_ms and self._paused_from is None:
            return self._end(EndOfTurn("max_length", 0))
        return []

    # --- the recognizer and the model -----------------------------------------------------

    def partial(self, text: str) -> list[Command]:
        if self._interjection and not self.config.could_acknowledge(text):
            return self._cut_for_speech()
        return []

    def turn_check(
        self, now_ms: int, paused_at_ms: int, probability: float | None, words: str | None
    ) -> list[Command]:
        """The model's probability that the caller has finished and, once decoded, the
        recognizer's speculative words, for the pause that began at `paused_at_ms` (ignored
        once the caller spoke again). A confident model ends the turn without the words; a
        hanging last word makes it wait whatever the model said."""
        if paused_at_ms != self._paused_from or self._speech_from is None or self._interjection:
            return []
        silence = now_ms - paused_at_ms
        if words is not None and self._hangs(words):
            return []
        if probability is not None and probability >= self.config.model_threshold:
            return self._end(EndOfTurn("model", silence, probability))
        if words is not None and _COMPLETE.search(words):
            return self._end(EndOfTurn("words", silence, probability))
        return []

    def final(self, text: str, at_ms: int, confidence: float | None = None) -> Heard:
        """What the utterance that just ended is (with the recognizer's confidence in its
        words, if it gives one), and what follows from it."""
        end, self._ending = self._ending, None
        interjection, continuing = self._interjection, self._continuing
        self._interjection = self._continuing = False
        self._speech_from = self._paused_from = None
        spoken = bool(words_of(text))
        if interjection and self._reply == "paused":
            short = self._interjection_ms <= self.config.backchannel_max_ms
            doubted = (
                confidence is not None and confidence < self.config.min_interjection_confidence
            )
            if not spoken or (short and (doubted or self.config.only_acknowledges(text))):
                self._reply = "playing"
                verdict = Verdict.BACKCHANNEL if spoken else Verdict.NOISE
                return Heard(verdict, end=end, commands=[ResumeReply()])
            self._reply = "none"
            self._turn_ended_at = at_ms
            return Heard(Verdict.TURN, answer=True, end=end, commands=[CutReply("speech")])
        if not spoken:
            return Heard(Verdict.NOISE, end=end, commands=self._resume_if_paused())
        verdict = Verdict.CONTINUATION if continuing else Verdict.TURN
        if self._hangs(text) and end is not None and end.reason in ("model", "words"):
            self._held_since = at_ms
            return Heard(Verdict.CONTINUATION if continuing else Verdict.HELD, end=end)
        self._turn_ended_at = at_ms
        return Heard(verdict, answer=True, end=end)

    def recognition_failed(self) -> list[Command]:
        """The utterance's words are lost (recognition refused or failed it; the caller is
        told). Speech over the reply was still real: the reply stays silent, cut, rather
        than paused for words that will never come. Anything else starts nothing."""
        interjection = self._interjection
        self._interjection = self._continuing = False
        self._speech_from = self._paused_from = None
        self._ending = None
        if interjection and self._reply == "paused":
            self._reply = "none"
            return [CutReply("speech")]
        return self._resume_if_paused()

    # --- helpers --------------------------------------------------------------------------

    def _pause_reply(self) -> list[Command]:
        if self._reply == "playing":
            self._reply = "paused"
            return [PauseReply()]
        return []

    def _resume_if_paused(self) -> list[Command]:
        if self._reply == "paused":
            self._reply = "playing"
            return [ResumeReply()]
        return []

    def _cut_for_speech(self) -> list[Command]:
        self._interjection = False
        self._reply = "none"
        return [CutReply("speech")]

    def _end(self, end: EndOfTurn) -> list[Command]:
        self._ending = end
        return [EndUtterance(end)]

    def _within_continuation(self, from_ms: int) -> bool:
        ended = self._turn_ended_at
        return ended is not None and from_ms - ended <= self.config.continuation_ms

    @staticmethod
    def _hangs(text: str) -> bool:
        """The words stop on one people rarely end with. Punctuation is no proof: Whisper
        ends whatever it heard with one ("Can you send it to?"), and waiting out a question
        that really ends in "to" costs a moment, where cutting a caller off costs the turn."""
        words = words_of(text)
        return bool(words) and words[-1] in HANGING_WORDS
