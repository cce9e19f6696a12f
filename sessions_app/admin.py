from asgiref.sync import async_to_sync
from django.contrib import admin, messages

from agents_app.admin import RecordInline
from agents_app.models import Task
from sessions_app.control import end_live_session, interrupt_session
from sessions_app.models import CallEvent, Session, Utterance


class UtteranceInline(RecordInline):
    """The transcript, read-only."""

    model = Utterance
    fields = [
        "seq",
        "role",
        "text",
        "interrupted_by",
        "heard_text",
        "confidence",
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
    list_display = [
        "id",
        "channel",
        "status",
        "agent",
        "caller_id",
        "call_state",
        "created_at",
        "turn_count",
        "barge_in_count",
        "error_count",
    ]
    list_filter = ["status", "channel", "call_state", "agent"]
    search_fields = ["id", "end_reason", "caller_id", "call_connection_id", "correlation_id"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "id",
        "created_at",
        "ended_at",
        "turn_count",
        "barge_in_count",
        "error_count",
        "caller_id",
        "call_connection_id",
        "server_call_id",
        "correlation_id",
        "call_state",
    ]
    inlines = [UtteranceInline, TaskInline, CallEventInline]
    actions = ["interrupt_sessions", "end_sessions"]

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
    list_display = ["session", "seq", "role", "text", "interrupted_by", "created_at"]
    list_filter = ["role", "interrupted", "interrupted_by", "final"]
    search_fields = ["text", "session__id"]
    readonly_fields = [field.name for field in Utterance._meta.fields]
