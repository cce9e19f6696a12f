"""The turn manager: one live session's conversation, independent of the socket carrying it.

The caller's words are redacted, stored and put in context; the agent's reply runs in a task
this object owns, so a barge-in can cancel it at any point; what the caller actually received
of an interrupted reply is what the context keeps.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from agents_app.errors import ProviderError
from agents_app.runtime import AgentRuntime, spec_for
from agents_app.tools import ToolCallRecord
from sessions_app import events
from sessions_app.context import ContextWindow
from sessions_app.events import BargeInSource, ErrorCode, ErrorSource, Event
from sessions_app.models import Session, Utterance
from sessions_app.redaction import (
    StreamingRedactor,
    redact_digits,
    redact_partial,
    redact_value,
)
from sessions_app.store import SessionStore, end_session

logger = logging.getLogger(__name__)

EventSender = Callable[[Event], Awaitable[None]]


class SessionClosed(Exception):
    """The session has already ended; it takes no more input."""


class AgentTurn:
    """One agent reply in flight: what was generated, what the caller was sent, and its task."""

    def __init__(self, number: int, send: EventSender) -> None:
        self.number = number
        self.task: asyncio.Task[None] | None = None
        self.finishing = False
        self._send = send
        self._generated: list[str] = []
        self._sent: list[str] = []
        self._redactor = StreamingRedactor()

    @property
    def interruptible(self) -> bool:
        return self.task is not None and not self.task.done() and not self.finishing

    @property
    def generated_text(self) -> str:
        return redact_digits("".join(self._generated))

    @property
    def sent_text(self) -> str:
        return "".join(self._sent)

    async def on_delta(self, text: str) -> None:
        self._generated.append(text)
        await self._send_delta(self._redactor.feed(text))

    async def flush(self) -> None:
        await self._send_delta(self._redactor.flush())

    async def _send_delta(self, safe: str) -> None:
        if safe:
            self._sent.append(safe)
            await self._send(events.agent_response_delta(turn=self.number, delta=safe))

    async def on_tool_call(self, record: ToolCallRecord) -> None:
        await self._send(events.tool_invocation(turn=self.number, record=record))


class Conversation:
    """Runs one session's turns and emits its events through `send`."""

    def __init__(
        self,
        session: Session,
        store: SessionStore,
        runtime: AgentRuntime,
        send: EventSender,
    ) -> None:
        self.session = session
        self.store = store
        self.runtime = runtime
        self.context = ContextWindow(session.agent.instructions, session.turn_budget)
        self.ended = False
        self._send = send
        self._turn: AgentTurn | None = None
        self._turns_started = session.turn_count

    @classmethod
    async def open(cls, session_id: uuid.UUID, send: EventSender) -> Conversation:
        """Load a live session; raises Session.DoesNotExist, or SessionClosed if it has ended."""
        session = await Session.objects.select_related("agent").aget(pk=session_id)
        if session.status != Session.Status.ACTIVE:
            raise SessionClosed(f"session {session_id} has ended ({session.end_reason})")
        store = await SessionStore.open(session)
        runtime = AgentRuntime(spec_for(session.agent), redact=redact_value)
        return cls(session, store, runtime, send)

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
        await self.store.set_sample_rate(sample_rate)

    async def hear_text(self, text: str, *, final: bool) -> None:
        """The caller's words as text; anything they say while the agent talks is a barge-in."""
        await self.barge_in("text")
        if final:
            await self.user_said(text)
        else:
            await self._send(events.transcript_partial(redact_partial(text)))

    async def user_said(self, text: str, **fields: object) -> None:
        """A final utterance of the caller: redact, store, show, and start the agent's reply."""
        redacted = redact_digits(text)
        utterance = await self.store.add_utterance(Utterance.Role.USER, redacted, **fields)
        await self._send(
            events.transcript_final(
                text=redacted, utterance_id=utterance.id, utterance_seq=utterance.seq
            )
        )
        dropped = self.context.add_user(redacted)
        if dropped:
            await self._send(
                events.context_truncated(
                    dropped_turns=self.context.dropped_turns,
                    kept_turns=len(self.context.turns),
                    turn_budget=self.context.turn_budget,
                )
            )
        self._turns_started += 1
        turn = AgentTurn(self._turns_started, self._send)
        turn.task = asyncio.create_task(self._run_agent_turn(turn, utterance))
        self._turn = turn

    async def _run_agent_turn(self, turn: AgentTurn, utterance: Utterance) -> None:
        try:
            full_text = await self.runtime.run_turn(
                session_id=self.session.id,
                utterance_id=utterance.id,
                messages=self.context.messages(),
                listener=turn,
            )
            await turn.flush()
        except ProviderError as exc:
            await self._keep_what_was_heard(turn)
            await self.report(ErrorCode(exc.code), str(exc), "agent")
            return
        except Exception:
            logger.exception("agent turn %d failed", turn.number)
            await self._keep_what_was_heard(turn)
            await self.report(ErrorCode.INTERNAL_ERROR, "the agent failed to answer", "agent")
            return
        turn.finishing = True
        reply = redact_digits(full_text)
        stored = await self.store.add_utterance(Utterance.Role.AGENT, reply)
        await self._send(
            events.agent_response_final(turn=turn.number, text=reply, utterance_id=stored.id)
        )
        self.context.add_agent(reply)
        await self.store.count("turn_count")

    async def barge_in(self, source: BargeInSource) -> bool:
        """Stop the agent's reply now, keeping what the caller received; False if none played."""
        heard = await self._cancel_turn()
        if heard is None:
            return False
        turn_number, heard_text = heard
        await self._send(
            events.barge_in(turn=turn_number, played_ms=0, heard_text=heard_text, source=source)
        )
        await self.store.count("barge_in_count")
        return True

    async def _cancel_turn(self) -> tuple[int, str] | None:
        turn, self._turn = self._turn, None
        if turn is None or turn.task is None or not turn.interruptible:
            return None
        turn.task.cancel()
        await asyncio.wait([turn.task])
        await self._keep_what_was_heard(turn)
        return turn.number, turn.sent_text

    async def _keep_what_was_heard(self, turn: AgentTurn) -> None:
        """A reply cut short: store it as interrupted; the context keeps only what was heard."""
        if not turn.generated_text:
            return
        await self.store.add_utterance(
            Utterance.Role.AGENT,
            turn.generated_text,
            interrupted=True,
            heard_text=turn.sent_text,
        )
        self.context.add_agent(turn.sent_text)

    async def report(self, code: ErrorCode, message: str, source: ErrorSource) -> None:
        """Tell the caller something went wrong, and count it on the session."""
        await self._send(events.error(code, message, source))
        await self.store.count("error_count")

    async def end(self, reason: str, *, notify: bool = True) -> None:
        """End the session once: stop any reply, mark it ended, say so if the caller listens."""
        if self.ended:
            return
        self.ended = True
        await self._cancel_turn()
        await end_session(self.session.id, reason)
        await self.runtime.aclose()
        if notify:
            await self._send(events.session_ended(reason))
