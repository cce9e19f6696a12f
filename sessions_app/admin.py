"""The operator's view of sessions: what happened stays as it happened.

An ended (or failed) session is a record: shown, never edited. A live one is changed only
through its actions (interrupt, end), which go through the running conversation.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from agents_app.admin import RecordInline
from agents_app.models import Task
from sessions_app.control import end_live_session, interrupt_session
from sessions_app.models import CallEvent, Session, Utterance
from sessions_app.pipeline.turn_metrics import describe, summarize
from sessions_app.serializers import recording_url


@admin.display(description="confidence")
def confidence(utterance: Utterance) -> str:
    """Two decimals are all a recogniser's confidence means."""
    return "—" if utterance.confidence is None else f"{utterance.confidence:.2f}"


@admin.display(description="timings")
def timings(utterance: Utterance) -> str:
    """Where an agent turn's time went, stage by stage (README, Turn metrics)."""
    return "—" if utterance.turn_metrics is None else describe(utterance.turn_metrics)


class UtteranceInline(RecordInline):
    """The transcript, read-only."""

    model = Utterance
    fields = [
        "seq",
        "role",
        "text",
        "interrupted_by",
        "heard_text",
        confidence,
        timings,
        "created_at",
    ]


class CallEventInline(RecordInline):
    """What ACS reported about a phone call, failures with their codes."""

    model = CallEvent
    fields = ["received_at", "kind", "result_code", "result_subcode", "result_message"]


class TaskInline(RecordInline):
    model = Task
    show_change_link = True
    fields = ["kind", "status", "error", "started_at", "finished_at"]


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    # Narrow columns, so that the list fits a 1366 px laptop screen beside the admin's menu.
    list_display = [
        "short_id",
        "started",
        "line",
        "state",
        "agent_name",
        "turns",
        "barge_ins",
        "errors",
    ]
    list_display_links = ["short_id"]
    list_select_related = ["agent"]
    list_filter = ["status", "channel", "call_state", "agent"]
    search_fields = ["id", "end_reason", "caller_id", "call_connection_id", "correlation_id"]
    date_hierarchy = "created_at"
    # Status, channel and agent change only through the conversation (the actions below).
    readonly_fields = [
        "id",
        "status",
        "channel",
        "agent",
        "created_at",
        "ended_at",
        "end_reason",
        "turn_count",
        "interrupted_turn_count",
        "barge_in_count",
        "error_count",
        "caller_id",
        "call_connection_id",
        "server_call_id",
        "correlation_id",
        "call_state",
        "turn_timings",
        "recording_link",
    ]
    inlines = [UtteranceInline, TaskInline, CallEventInline]
    actions = ["interrupt_sessions", "end_sessions"]

    class Media:
        css = {"all": ["admin-sessions.css"]}

    def has_change_permission(self, request: HttpRequest, obj: Session | None = None) -> bool:
        """An ended or failed session is shown, not edited."""
        if obj is not None and obj.status != Session.Status.ACTIVE:
            return False
        return super().has_change_permission(request, obj)

    @admin.display(description="session", ordering="id")
    def short_id(self, session: Session) -> str:
        return str(session.id)[:8]

    @admin.display(description="started", ordering="created_at")
    def started(self, session: Session) -> str:
        return timezone.localtime(session.created_at).strftime("%d %b %H:%M")

    @admin.display(description="channel", ordering="channel")
    def line(self, session: Session) -> str:
        """Web, or the phone caller's id."""
        if session.channel == Session.Channel.ACS:
            return f"Phone {session.caller_id or '(unknown)'}"
        return session.get_channel_display()

    @admin.display(description="agent", ordering="agent__name")
    def agent_name(self, session: Session) -> str:
        return session.agent.name

    @admin.display(description="status", ordering="status")
    def state(self, session: Session) -> str:
        """The status, and for a phone call where the call is."""
        status = session.get_status_display()
        return f"{status} · {session.get_call_state_display()}" if session.call_state else status

    @admin.display(description="turns (cut)", ordering="turn_count")
    def turns(self, session: Session) -> str:
        """Agent turns, and in brackets how many of them were cut short."""
        return f"{session.turn_count} ({session.interrupted_turn_count})"

    @admin.display(description="barge-ins", ordering="barge_in_count")
    def barge_ins(self, session: Session) -> int:
        return session.barge_in_count

    @admin.display(description="turn timings (p50 / max)")
    def turn_timings(self, session: Session) -> str:
        """The session's stages over its agent turns: median and worst, in ms."""
        if session._state.adding:
            return "—"
        records = [
            metrics
            for metrics in session.utterances.filter(role=Utterance.Role.AGENT)
            .exclude(turn_metrics=None)
            .values_list("turn_metrics", flat=True)
        ]
        summary = summarize(records)
        if not summary:
            return "—"
        return (
            " · ".join(
                f"{stage} {figures['p50']} / {figures['max']}" for stage, figures in summary.items()
            )
            + f" ms over {len(records)} turns"
        )

    @admin.display(description="errors", ordering="error_count")
    def errors(self, session: Session) -> int:
        return session.error_count

    @admin.display(description="recording")
    def recording_link(self, session: Session) -> str:
        """The call's stereo WAV (caller left, agent right), through the operators' download."""
        url = recording_url(session)
        if url is None:
            return "—"
        return format_html('<a href="{}" download>Download the recording (WAV)</a>', url)

    @admin.action(description="Interrupt the agent (barge-in)", permissions=["change"])
    def interrupt_sessions(self, request, queryset) -> None:
        live = list(queryset.filter(status=Session.Status.ACTIVE).values_list("pk", flat=True))
        for session_id in live:
            async_to_sync(interrupt_session)(session_id)
        self.message_user(request, f"Interrupt sent to {len(live)} live session(s).")

    @admin.action(description="End session", permissions=["change"])
    def end_sessions(self, request, queryset) -> None:
        live = list(queryset.filter(status=Session.Status.ACTIVE).values_list("pk", flat=True))
        ended = sum(async_to_sync(end_live_session)(pk, "operator_ended") for pk in live)
        level = messages.SUCCESS if ended else messages.WARNING
        self.message_user(request, f"Ended {ended} live session(s).", level)


@admin.register(Utterance)
class UtteranceAdmin(admin.ModelAdmin):
    list_display = ["session", "seq", "role", "text", "interrupted_by", confidence, "created_at"]
    # The raw turn_metrics JSON is among the fields; `timings` reads it as a line.
    list_filter = ["role", "interrupted", "interrupted_by", "final"]
    search_fields = ["text", "session__id"]
    readonly_fields = [
        *(field.name for field in Utterance._meta.fields if field.name != "confidence"),
        confidence,
        timings,
    ]
