"""The caller's side of a live session: what the recognition worker hears goes through the
turn-taking object, and its commands become the conversation's actions.

The recognition worker calls these methods from its own task, in the order things happened
in the audio, so a command that ends an utterance (or asks for a turn check) runs before the
next chunk of audio is heard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents_app.errors import ProviderError
from agents_app.speech.stt.base import Transcript
from sessions_app import events
from sessions_app.pipeline.recognition import RecognitionWorker, TurnCheck
from sessions_app.pipeline.turn_metrics import BargeInOutcome, TurnMetrics
from sessions_app.pipeline.turn_taking import (
    AnswerHeld,
    CheckTurnEnd,
    Command,
    ContinueUtterance,
    CutReply,
    EndUtterance,
    PauseReply,
    ResumeReply,
    TurnTaker,
    Verdict,
)
from sessions_app.redaction import redact_partial
from voiceproject.metrics import BARGE_INS

if TYPE_CHECKING:
    from sessions_app.pipeline.turns import Conversation


class Listening:
    """The RecognitionListener of one conversation."""

    def __init__(self, conversation: Conversation, turn_taking: TurnTaker) -> None:
        self._conversation = conversation
        self._turn_taking = turn_taking
        self.worker: RecognitionWorker | None = None
        self._ending: TurnMetrics | None = None  # the caller's turn being finished, timed

    async def on_speech_suspected(self, offset_ms: int) -> None:
        await self._run(self._turn_taking.speech_suspected(offset_ms), onset_ms=offset_ms)

    async def on_speech_dismissed(self, offset_ms: int) -> None:
        commands = self._turn_taking.speech_dismissed(offset_ms)
        if ResumeReply() in commands:
            BARGE_INS.labels("resumed").inc()  # a false alarm
        await self._run(commands)

    async def on_speech_started(self, offset_ms: int) -> None:
        await self._conversation.send(events.speech_started(offset_ms=offset_ms))
        if self.worker is not None and not self.worker.recognizes:
            # No words to tell an acknowledgement from an interruption by: speech cuts.
            await self._conversation.barge_in("speech")
        await self._run(self._turn_taking.speech_started(offset_ms), onset_ms=offset_ms)

    async def on_speech_paused(self, offset_ms: int) -> None:
        await self._run(self._turn_taking.speech_paused(offset_ms))

    async def on_speech_resumed(self, offset_ms: int) -> None:
        await self._run(self._turn_taking.speech_resumed(offset_ms))

    async def on_silence_limit(self) -> None:
        await self._run(self._turn_taking.silence_limit())

    async def on_audio_time(self, now_ms: int) -> None:
        await self._run(self._turn_taking.audio(now_ms))

    def wants_audio_time(self) -> bool:
        return self._turn_taking.runs_a_clock

    async def on_turn_check(self, now_ms: int, check: TurnCheck) -> None:
        await self._run(
            self._turn_taking.turn_check(now_ms, check.paused_at_ms, check.probability, check.words)
        )

    async def on_speech_stopped(self, offset_ms: int, duration_ms: int) -> None:
        await self._conversation.send(
            events.speech_stopped(offset_ms=offset_ms, duration_ms=duration_ms)
        )

    async def on_partial(self, text: str) -> None:
        await self._conversation.send(events.transcript_partial(redact_partial(text)))
        await self._run(self._turn_taking.partial(text))

    async def on_final(self, transcript: Transcript, start_ms: int, end_ms: int) -> None:
        heard = self._turn_taking.final(transcript.text.strip(), end_ms, transcript.confidence)
        outcome: BargeInOutcome = (
            "backchannel" if heard.verdict is Verdict.BACKCHANNEL else "resumed"
        )
        if ResumeReply() in heard.commands:
            BARGE_INS.labels(outcome).inc()
        # The reply is cut or resumed before anything is stored.
        await self._run(heard.commands, resumed_as=outcome)
        metrics, self._ending = self._ending, None
        await self._conversation.caller_said(
            heard, transcript, start_ms=start_ms, end_ms=end_ms, metrics=metrics
        )

    async def on_recognition_error(self, exc: ProviderError) -> None:
        """The worker dropped the utterance (e.g. `stt_overloaded`): the reply it paused must
        not wait for its words."""
        await self._run(self._turn_taking.recognition_failed())
        await self._conversation.report(events.error_for(exc))

    async def _run(
        self,
        commands: list[Command],
        *,
        onset_ms: int | None = None,
        resumed_as: BargeInOutcome = "resumed",
    ) -> None:
        """Carry out turn-taking's commands; `onset_ms` (stream time) is where the caller audio
        that would pause the reply began, `resumed_as` what a resume is counted as."""
        conversation, worker = self._conversation, self.worker
        for command in commands:
            if isinstance(command, PauseReply):
                await conversation.pause_reply(onset_ms=self._moment(onset_ms))
            elif isinstance(command, ResumeReply):
                await conversation.resume_reply(resumed_as)
            elif isinstance(command, CutReply):
                await conversation.barge_in(command.source)
            elif isinstance(command, AnswerHeld):
                await conversation.answer_held()
            elif isinstance(command, CheckTurnEnd) and worker is not None:
                worker.check_turn_end(command.paused_at_ms)
            elif isinstance(command, EndUtterance) and worker is not None:
                self._ending = TurnMetrics(conversation.clock)
                self._ending.caller_finished(command.end)
                await worker.end_utterance()
            elif isinstance(command, ContinueUtterance) and worker is not None:
                worker.continue_utterance()

    def _moment(self, offset_ms: int | None) -> float | None:
        """Stream time `offset_ms` on the session's clock, by the samples heard since."""
        if offset_ms is None or self.worker is None:
            return None
        return self._conversation.clock.audio_moment(offset_ms, self.worker.position_ms)
