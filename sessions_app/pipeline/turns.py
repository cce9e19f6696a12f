"""The turn manager: one live session's conversation, independent of the socket carrying it.

The caller's words (typed, or recognised from audio) are redacted, stored and put in context;
the agent's reply runs in a task this object owns: text streams out as it is generated and,
with a speech engine, is spoken sentence by sentence. A barge-in stops playback first (no
frame leaves after it), then cancels the generation; what the caller actually heard of the
reply is what is stored as `heard_text` and what the context keeps.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from django.conf import settings

from agents_app.errors import ProviderError
from agents_app.runtime import AgentRuntime, spec_for
from agents_app.speech.stt import build_recognizer
from agents_app.speech.stt.base import Transcript
from agents_app.speech.tts import build_synthesizer
from agents_app.speech.tts.base import SpeechSynthesizer
from agents_app.speech.turn import build_turn_model
from agents_app.tools import ToolCallRecord
from sessions_app import events, liveness, log_context
from sessions_app.context import ContextWindow
from sessions_app.events import BargeInSource, ErrorBody, ErrorCode, Event
from sessions_app.models import Session, Utterance
from sessions_app.pipeline.audio_budget import AudioBudget
from sessions_app.pipeline.keypad import Keypad
from sessions_app.pipeline.listening import Listening
from sessions_app.pipeline.playback import PlaybackWorker, SentenceSplitter
from sessions_app.pipeline.recognition import RecognitionWorker
from sessions_app.pipeline.turn_metrics import BargeInOutcome, SessionClock, TurnMetrics, observe
from sessions_app.pipeline.turn_taking import EndOfTurn, Heard, TurnTaker, TurnTakingConfig, Verdict
from sessions_app.recording.digit_spans import SILENCE_MARGIN_MS
from sessions_app.recording.session_recording import SessionRecording
from sessions_app.redaction import (
    StreamingRedactor,
    redact_digits,
    redact_partial,
    redact_value,
)
from sessions_app.store import SessionStore, StorageFailed, end_session
from sessions_app.vad import VoiceDetection
from voiceproject.metrics import BARGE_INS

logger = logging.getLogger(__name__)

EventSender = Callable[[Event], Awaitable[None]]
AudioSender = Callable[[bytes], Awaitable[None]]
# Recognition may fall this far behind the audio budget before audio is dropped.
RECOGNITION_SLACK_MS = 1000
# A recording holds this much of the call in memory: longer ago, only silences change it.
RECORDING_WINDOW_S = 30
# A keypad tone lasts about this long on either side of the moment ACS reports the key.
KEY_TONE_MS = 300


class SessionClosed(Exception):
    """The session has already ended; it takes no more input."""


class AlreadyConnected(Exception):
    """Another socket holds the session: one live socket per session."""


class AgentTurn:
    """One agent reply in flight: what was generated, sent, spoken, and the task behind it."""

    def __init__(
        self,
        number: int,
        send: EventSender,
        playback: PlaybackWorker | None,
        metrics: TurnMetrics,
    ) -> None:
        self.number = number
        self.utterance_id = uuid.uuid4()  # named in agent_response, stored when the turn ends
        self.task: asyncio.Task[None] | None = None
        self.finishing = False
        self.playback = playback
        self.metrics = metrics  # the caller's side marked already, if a caller's turn led here
        self._send = send
        self._generated: list[str] = []
        self._sent: list[str] = []
        self._redactor = StreamingRedactor()
        self._sentences = SentenceSplitter()

    @property
    def interruptible(self) -> bool:
        return self.task is not None and not self.task.done() and not self.finishing

    @property
    def generated_text(self) -> str:
        return redact_digits("".join(self._generated))

    async def on_delta(self, text: str) -> None:
        self.metrics.mark("first_token")
        self._generated.append(text)
        await self._send_delta(self._redactor.feed(text))

    async def flush(self) -> None:
        """The reply is complete: release held-back text and speak the last sentence."""
        await self._send_delta(self._redactor.flush())
        if self.playback is not None:
            for sentence in self._sentences.flush():
                self.playback.speak(sentence)
            self.playback.finish()

    async def _send_delta(self, safe: str) -> None:
        if not safe:
            return
        self._sent.append(safe)
        await self._send(events.agent_response_delta(turn=self.number, delta=safe))
        if self.playback is not None:
            for sentence in self._sentences.feed(safe):
                self.playback.speak(sentence)

    async def on_tool_call(self, record: ToolCallRecord) -> None:
        await self._send(events.tool_invocation(turn=self.number, record=record))

    async def pause(self) -> int | None:
        """Hold the reply's audio (the caller may be speaking); the ms played, or None if no
        audio had started (there is nothing for the client to drop)."""
        if self.playback is None or not self.interruptible:
            return None
        started = self.playback.started
        played_ms = await self.playback.pause()
        return played_ms if started else None

    def resume(self) -> int | None:
        """Let the held audio go on; the ms played, or None if none had started."""
        if self.playback is None or not self.interruptible:
            return None
        played_ms = self.playback.resume()
        return played_ms if self.playback.started else None

    def stop(self) -> tuple[int, str]:
        """Silence the reply now; return (ms played, text heard). Text-only: all that was sent."""
        if self.playback is None:
            return 0, "".join(self._sent)
        played_ms = self.playback.stop()
        return played_ms, self.playback.heard_text()


class Conversation:
    """Runs one session's turns; events leave through `send`, agent audio through `send_audio`."""

    def __init__(
        self,
        session: Session,
        store: SessionStore,
        runtime: AgentRuntime,
        synthesizer: SpeechSynthesizer | None,
        voice_detection: VoiceDetection,
        send: EventSender,
        send_audio: AudioSender,
        recording: SessionRecording | None = None,
    ) -> None:
        self.session = session
        self.store = store
        self.runtime = runtime
        self.context = ContextWindow(session.agent.instructions, session.turn_budget)
        self.ended = False
        self.audio_started = False
        self.clock = SessionClock()  # the time base of every turn's metrics
        self._synthesizer = synthesizer
        self._voice_detection = voice_detection
        self._send = send
        self._send_audio = send_audio
        self._turn: AgentTurn | None = None
        self._turns_started = session.turn_count
        self._recognition: RecognitionWorker | None = None
        self.turn_taking = TurnTaker(TurnTakingConfig.from_settings())
        self._listening = Listening(self, self.turn_taking)
        self._last_user: Utterance | None = None  # the caller's last turn, which may go on
        # A turn that ended on a hanging word, unanswered, with its metrics.
        self._held: tuple[Utterance, TurnMetrics] | None = None
        self._audio_budget = AudioBudget(settings.AUDIO_AHEAD_BUDGET_MS)
        self._keypad = Keypad(self._keypad_entry, settings.DTMF_ENTRY_TIMEOUT_MS / 1000)
        self._recording = recording
        self._keys_heard_at: list[float] = []  # stream ms of each key of the entry being typed

    @classmethod
    async def open(
        cls,
        session_id: uuid.UUID,
        send: EventSender,
        send_audio: AudioSender,
        channel: str = Session.Channel.WEB,
    ) -> Conversation:
        """Load a live session of this channel and take it live in this process; raises
        Session.DoesNotExist, SessionClosed if it has ended, AlreadyConnected if another
        socket took it."""
        session = await Session.objects.select_related("agent").aget(pk=session_id, channel=channel)
        if session.status != Session.Status.ACTIVE:
            raise SessionClosed(f"session {session_id} has ended ({session.end_reason})")
        if not await liveness.claim(session.pk):
            raise AlreadyConnected(f"session {session_id} is already connected elsewhere")
        store = await SessionStore.open(session)
        runtime = AgentRuntime(spec_for(session.agent), redact=redact_value)
        synthesizer = build_synthesizer(
            settings.TTS_ENGINE, session.agent.voice or settings.TTS_VOICE
        )
        voice_detection = VoiceDetection.from_settings()
        recording = None
        if settings.RECORD_SESSIONS:
            recording = SessionRecording(
                session.pk,
                lambda: session.sample_rate,
                window_s=RECORDING_WINDOW_S,
                max_s=settings.RECORDING_MAX_S,
            )
        return cls(
            session, store, runtime, synthesizer, voice_detection, send, send_audio, recording
        )

    async def start(self) -> None:
        await self._send(
            events.session_started(
                agent_name=self.session.agent.name,
                strategy=self.session.agent.strategy,
                channel=self.session.channel,
                sample_rate=self.session.sample_rate,
                turn_budget=self.session.turn_budget,
            )
        )

    async def configure(self, sample_rate: int) -> None:
        if self.audio_started and sample_rate != self.session.sample_rate:
            await self.report(
                events.error(
                    ErrorCode.INVALID_EVENT,
                    "the sample rate can only change before the first audio frame",
                    "client",
                )
            )
            return
        try:
            await self.store.set_sample_rate(sample_rate)
        except StorageFailed as exc:
            await self.report(events.error(ErrorCode.STORAGE_FAILED, str(exc), "storage"))
        if self._recording is not None:
            self._recording.rate_changed()

    # --- the caller -----------------------------------------------------------------------

    async def hear_audio(self, pcm: bytes, *, recognise: bool = True) -> None:
        """Caller audio at the session's rate; recognised in the recognition worker's task.
        Audio beyond the real-time budget, or that recognition is too far behind to take, is
        dropped with an `audio_overrun` error (at most one a second). Without `recognise`
        (words come transcribed, from ACS) it is only recorded."""
        if not recognise:
            if self._recording is not None:
                await self._recording.hear(pcm)
            return
        if self._recognition is None:
            self._recognition = RecognitionWorker(
                self._listening,
                self._voice_detection.new_detector(),
                build_recognizer(settings.STT_ENGINE),
                sample_rate=self.session.sample_rate,
                max_queued_ms=settings.AUDIO_AHEAD_BUDGET_MS + RECOGNITION_SLACK_MS,
                turn_model=build_turn_model(settings.TURN_MODEL),
                silence_audio=self._recording.silence if self._recording else None,
            )
            self._listening.worker = self._recognition
        self.audio_started = True
        duration_ms = len(pcm) / 2 / self.session.sample_rate * 1000
        if self._audio_budget.admit(duration_ms) and self._recognition.feed(pcm):
            if self._recording is not None:  # what recognition hears: one clock for both
                await self._recording.hear(pcm)
            return
        if self._audio_budget.should_warn():
            message = (
                f"audio is arriving faster than real time (more than "
                f"{settings.AUDIO_AHEAD_BUDGET_MS} ms ahead): dropped; send it as it is spoken"
            )
            await self.report(events.error(ErrorCode.AUDIO_OVERRUN, message, "client"))

    async def hear_text(
        self, text: str, *, final: bool, source: BargeInSource = "text", **fields: object
    ) -> None:
        """The caller's words as text (typed, or transcribed elsewhere, e.g. by ACS); anything
        they say while the agent talks is a barge-in. `fields` are the utterance's timing."""
        await self.barge_in(source)
        if final:
            self._silence_transcribed(text, fields.get("start_ms"), fields.get("end_ms"))
            await self.user_said(text, **fields)
        else:
            await self._send(events.transcript_partial(redact_partial(text)))

    async def user_said(
        self,
        text: str,
        *,
        end: EndOfTurn | None = None,
        answer: bool = True,
        metrics: TurnMetrics | None = None,
        **fields: object,
    ) -> None:
        """A final utterance of the caller: redact, store, show, and (unless it waits for
        more) start the agent's reply. `metrics` hold the moments of a spoken turn's end."""
        redacted = redact_digits(text)
        utterance = await self._keep(Utterance.Role.USER, redacted, **fields)
        if utterance is None:
            return  # the caller was told their words were not stored, and can say them again
        metrics = metrics or TurnMetrics(self.clock)
        await self._show_final(utterance, end, metrics)
        self._last_user = utterance
        dropped = self.context.add_user(redacted)
        if dropped:
            await self._send(
                events.context_truncated(
                    dropped_turns=self.context.dropped_turns,
                    kept_turns=len(self.context.turns),
                    turn_budget=self.context.turn_budget,
                )
            )
        if answer:
            self._answer(utterance, metrics)
        else:
            self._held = utterance, metrics

    def _answer(self, utterance: Utterance, metrics: TurnMetrics) -> None:
        self._held = None
        self._start_turn(
            lambda turn: self.runtime.run_turn(
                session_id=self.session.id,
                utterance_id=utterance.id,
                messages=self.context.messages(),
                listener=turn,
            ),
            metrics,
        )

    async def caller_said(
        self,
        heard: Heard,
        transcript: Transcript,
        *,
        start_ms: int,
        end_ms: int,
        metrics: TurnMetrics | None = None,
    ) -> None:
        """A recognised utterance, as the turn-taking judged it; `metrics` hold the moments of
        its end, if turn-taking ended it."""
        timing = {"start_ms": start_ms, "end_ms": end_ms, "confidence": transcript.confidence}
        text = transcript.text.strip()
        metrics = metrics or TurnMetrics(self.clock)
        if heard.verdict is Verdict.NOISE:
            return
        if heard.verdict is Verdict.BACKCHANNEL:
            await self._keep_backchannel(text, heard.end, metrics, timing)
        elif heard.verdict is Verdict.CONTINUATION and self._last_user is not None:
            await self._continue_turn(text, heard, end_ms, metrics)
        else:
            await self.user_said(
                text, end=heard.end, answer=heard.answer, metrics=metrics, **timing
            )

    async def _keep_backchannel(
        self,
        text: str,
        end: EndOfTurn | None,
        metrics: TurnMetrics,
        timing: dict[str, object],
    ) -> None:
        """An acknowledgement over the reply: stored and shown, but no turn of its own (its
        metrics go nowhere: the reply it was said over records the barge-in)."""
        redacted = redact_digits(text)
        utterance = await self._keep(Utterance.Role.USER, redacted, backchannel=True, **timing)
        if utterance is not None:
            await self._show_final(utterance, end, metrics)

    async def _continue_turn(
        self, text: str, heard: Heard, end_ms: int, metrics: TurnMetrics
    ) -> None:
        """The caller went on with their last turn: it is one utterance (recognised from both
        parts' audio, so `text` is all of it), stored and shown whole under its first id, and
        the agent answers all of it."""
        utterance = self._last_user
        assert utterance is not None
        whole = redact_digits(text)
        try:
            await self.store.extend_utterance(utterance, whole, end_ms)
        except StorageFailed as exc:
            await self.report(events.error(ErrorCode.STORAGE_FAILED, str(exc), "storage"))
            return
        await self._show_final(utterance, heard.end, metrics)
        self.context.extend_user(whole)
        if heard.answer:
            self._answer(utterance, metrics)
        else:
            self._held = utterance, metrics

    async def _show_final(
        self, utterance: Utterance, end: EndOfTurn | None, metrics: TurnMetrics
    ) -> None:
        """Tell the client the caller's utterance as stored (a moment of the turn's metrics)."""
        await self._send(
            events.transcript_final(
                text=utterance.text,
                utterance_id=utterance.id,
                utterance_seq=utterance.seq,
                end_of_turn=end.as_json() if end is not None else None,
                backchannel=utterance.backchannel,
            )
        )
        metrics.mark("transcript_final")

    async def answer_held(self) -> None:
        """The caller said no more after a turn that hung: answer it as it stands."""
        if self._held is not None:
            self._answer(*self._held)

    async def pause_reply(self, onset_ms: float | None = None) -> None:
        """Hold the reply for caller audio that began at `onset_ms` (session time)."""
        turn = self._turn
        if turn is not None and (played_ms := await turn.pause()) is not None:
            self._drop_unheard()
            turn.metrics.barge_in_paused(onset_ms)
            await self._send(events.playback_paused(turn=turn.number, played_ms=played_ms))

    async def resume_reply(self, outcome: BargeInOutcome = "resumed") -> None:
        """Let the held reply go on: the pause was a false alarm, or (`outcome`) a backchannel."""
        turn = self._turn
        if turn is not None and (played_ms := turn.resume()) is not None:
            turn.metrics.barge_in_resumed(outcome)
            await self._send(events.playback_resumed(turn=turn.number, played_ms=played_ms))

    async def send(self, event: Event) -> None:
        await self._send(event)

    async def greet(self) -> None:
        """Say the agent's greeting as its first turn (a phone call has just connected). It is
        a reply like any other: spoken, stored, kept in context, and interruptible."""
        greeting = self.session.agent.greeting.strip()
        if greeting and self._turns_started == 0:
            self._start_turn(lambda turn: self._say(turn, greeting), TurnMetrics(self.clock))

    @staticmethod
    async def _say(turn: AgentTurn, text: str) -> str:
        await turn.on_delta(text)
        return text

    async def hear_dtmf(self, tone: str) -> None:
        """A phone caller pressed a key: the agent stops talking; entries go to the agent."""
        await self.barge_in("dtmf")
        if self._recording is not None:
            self._keys_heard_at.append(self._recording.position_ms())
        await self._keypad.press(tone)

    def _silence_transcribed(self, text: str, start_ms: object, end_ms: object) -> None:
        """Words transcribed elsewhere (ACS) come with their utterance's times in the call's
        stream, not word by word: an utterance with a redacted run is silenced whole (all
        the recording still holds in memory, if its times are missing)."""
        if self._recording is None or redact_digits(text) == text:
            return
        if isinstance(start_ms, int) and isinstance(end_ms, int):
            self._recording.silence(start_ms - SILENCE_MARGIN_MS, end_ms + SILENCE_MARGIN_MS)
        else:
            now = self._recording.position_ms()
            self._recording.silence(now - RECORDING_WINDOW_S * 1000, now)

    async def _keypad_entry(self, entry: str) -> None:
        redacted = redact_digits(entry)
        keys, self._keys_heard_at = self._keys_heard_at, []
        if self._recording is not None and redacted != entry and keys:
            # The call's audio may carry the keys' tones: they would spell the entry.
            self._recording.silence(keys[0] - KEY_TONE_MS, keys[-1] + KEY_TONE_MS)
        await self._send(events.dtmf(redacted))
        await self.user_said(redacted)

    # --- the agent ------------------------------------------------------------------------

    def _playback_for(self, turn_number: int, metrics: TurnMetrics) -> PlaybackWorker | None:
        if self._synthesizer is None:
            return None
        return PlaybackWorker(
            self._synthesizer,
            turn=turn_number,
            sample_rate=self.session.sample_rate,
            send_audio=self._send_agent_audio,
            send_event=self._send,
            report=self.report,
            frame_ms=settings.PLAYBACK_FRAME_MS,
            lead_ms=settings.PLAYBACK_LEAD_MS,
            mark=metrics.mark,
        )

    async def _send_agent_audio(self, frame: bytes) -> None:
        """A frame of the reply leaves for the caller (and goes on the recording)."""
        if self._recording is not None:
            self._recording.play(frame)
        await self._send_audio(frame)

    def _drop_unheard(self) -> None:
        """Playback paused or stopped: the client drops the audio it held, unheard."""
        if self._recording is not None:
            self._recording.drop_unheard()

    def _start_turn(
        self, reply: Callable[[AgentTurn], Awaitable[str]], metrics: TurnMetrics
    ) -> None:
        """Start the agent's next turn in a task of its own; `reply` streams it to the turn."""
        self._turns_started += 1
        number = self._turns_started
        turn = AgentTurn(number, self._send, self._playback_for(number, metrics), metrics)
        turn.task = asyncio.create_task(self._run_agent_turn(turn, reply))
        self._turn = turn
        self.turn_taking.reply_started()

    async def _run_agent_turn(
        self, turn: AgentTurn, reply: Callable[[AgentTurn], Awaitable[str]]
    ) -> None:
        log_context.bind_turn(turn.number)  # this task's own context: its logs name the turn
        try:
            full_text = await reply(turn)
            await turn.flush()
        except Exception as exc:
            await self._turn_failed(turn, exc)
            return
        turn.metrics.mark("reply_done")
        text = redact_digits(full_text)
        final = events.agent_response_final(
            turn=turn.number, text=text, utterance_id=turn.utterance_id
        )
        if turn.playback is None:
            record = await self._complete_turn(turn, text)
            await self._send(final)
        else:
            await self._send(final)
            played_ms = await turn.playback.wait_played()
            turn.metrics.mark("playback_end")
            record = await self._complete_turn(turn, text)
            await self._send(events.playback_completed(turn=turn.number, played_ms=played_ms))
        await self._turn_closed(turn, record)

    async def _complete_turn(self, turn: AgentTurn, reply: str) -> dict:
        """The reply was delivered whole: no barge-in can cut it any more; store and remember
        it, with its metrics (returned).

        Done before the turn's last event, so a client that reads the session after that
        event finds the reply stored.
        """
        turn.finishing = True
        self.turn_taking.reply_ended()
        record = turn.metrics.as_json()
        await self._keep(Utterance.Role.AGENT, reply, id=turn.utterance_id, turn_metrics=record)
        self.context.add_agent(reply)
        return record

    async def _turn_closed(self, turn: AgentTurn, record: dict) -> None:
        """The turn is over, after its last event: its metrics go to Prometheus and the client."""
        observe(record)
        await self._send(
            events.turn_metrics(turn=turn.number, utterance_id=turn.utterance_id, metrics=record)
        )

    async def _turn_failed(self, turn: AgentTurn, exc: Exception) -> None:
        turn.finishing = True
        self.turn_taking.reply_ended()
        _, heard = turn.stop()
        record = await self._keep_what_was_heard(turn, heard, "error")
        if isinstance(exc, ProviderError):
            await self.report(events.error_for(exc))
        else:
            logger.error("agent turn %d failed: %s", turn.number, type(exc).__name__)
            await self.report(
                events.error(ErrorCode.INTERNAL_ERROR, "the agent failed to answer", "agent")
            )
        await self._turn_closed(turn, record)

    async def barge_in(self, source: BargeInSource) -> bool:
        """Stop the agent's reply now, keeping what the caller heard; False if none was playing."""
        confirmed_ms = self.clock.now_ms()
        stopped = await self._stop_turn()
        if stopped is None:
            return False
        BARGE_INS.labels("confirmed").inc()
        self.turn_taking.reply_ended()
        turn, played_ms, heard = stopped
        turn.metrics.barge_in_confirmed(confirmed_ms, source)
        await self._send(
            events.barge_in(turn=turn.number, played_ms=played_ms, heard_text=heard, source=source)
        )
        record = await self._keep_what_was_heard(turn, heard, source)
        await self.store.count("barge_in_count")
        await self._turn_closed(turn, record)
        return True

    async def _stop_turn(self) -> tuple[AgentTurn, int, str] | None:
        """Silence the reply in flight (no frame leaves after this) and cancel its generation."""
        turn, self._turn = self._turn, None
        if turn is None or not turn.interruptible:
            return None
        played_ms, heard = turn.stop()
        self._drop_unheard()
        turn.task.cancel()
        await asyncio.wait([turn.task])
        if turn.finishing:
            return None  # it completed after all, and stored itself: nothing was cut
        return turn, played_ms, heard

    async def _keep_what_was_heard(self, turn: AgentTurn, heard: str, cut_by: str) -> dict:
        """A reply cut short: store it as interrupted, with its metrics (returned; a reply cut
        before its first word is not stored, but its metrics are still sent); the context
        keeps only what was heard (nothing, when the caller went on with their turn: it is
        answered anew)."""
        record = turn.metrics.as_json(cut_by)
        if turn.generated_text:
            await self._keep(
                Utterance.Role.AGENT,
                turn.generated_text,
                id=turn.utterance_id,
                interrupted=True,
                heard_text=heard,
                interrupted_by=cut_by,
                turn_metrics=record,
            )
            await self.runtime.turn_cut(turn, cut_by)
            if cut_by != "continuation":
                self.context.add_agent(heard)
        return record

    # --- the session ----------------------------------------------------------------------

    async def _keep(self, role: str, text: str, **fields: object) -> Utterance | None:
        """Store an utterance; if the database stays away, tell the caller what was lost."""
        try:
            return await self.store.add_utterance(role, text, **fields)
        except StorageFailed as exc:
            await self.report(events.error(ErrorCode.STORAGE_FAILED, str(exc), "storage"))
            return None

    async def _save_recording(self) -> None:
        """Store the call's recording (after recognition closed: its last silences are in)."""
        if self._recording is None:
            return
        try:
            name = await self._recording.save()
            if name is not None:
                await self.store.set_recording(name)
        except Exception:  # any storage backend's failure: the session still ends
            logger.exception("session %s: the recording could not be saved", self.session.id)

    async def report(self, body: ErrorBody) -> None:
        """Tell the caller something went wrong, and count it on the session."""
        await self._send(body)
        await self.store.count("error_count")

    async def end(self, reason: str, *, notify: bool = True) -> None:
        """End the session once: stop any reply, mark it ended, say so if the caller listens."""
        if self.ended:
            return
        self.ended = True
        await self._keypad.close()
        stopped = await self._stop_turn()
        if stopped is not None:
            turn, _, heard = stopped
            await self._turn_closed(
                turn, await self._keep_what_was_heard(turn, heard, "session_end")
            )
        if self._recognition is not None:
            unfinished = await self._recognition.close()
            if unfinished is not None:
                await self._keep(
                    Utterance.Role.USER,
                    redact_digits(unfinished.transcript.text),
                    start_ms=unfinished.start_ms,
                    end_ms=unfinished.end_ms,
                    confidence=unfinished.transcript.confidence,
                )
        try:
            await end_session(self.session.id, reason)
        except StorageFailed as exc:
            await self.report(events.error(ErrorCode.STORAGE_FAILED, str(exc), "storage"))
        await self._save_recording()
        await self.runtime.aclose()
        if self._synthesizer is not None:
            await self._synthesizer.aclose()
        if notify:
            await self._send(events.session_ended(reason))
