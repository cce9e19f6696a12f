"""The conversation's durable state: sessions and the utterances spoken in them."""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models

from agents_app.models import Agent


class Session(models.Model):
    """One conversation between a caller and an agent, over one channel."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"
        FAILED = "failed", "Failed"

    class Channel(models.TextChoices):
        WEB = "web", "Web"
        ACS = "acs", "Phone (ACS)"

    class CallState(models.TextChoices):
        """Where a phone call is, as ACS's callbacks tell it (blank for web sessions)."""

        ANSWERING = "answering", "Answering"
        ANSWER_FAILED = "answer_failed", "Answer failed"
        CONNECTED = "connected", "Connected"
        STREAMING = "streaming", "Media streaming"
        MEDIA_FAILED = "media_failed", "Media streaming failed"
        DISCONNECTED = "disconnected", "Disconnected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WEB)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="sessions")
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=50, blank=True)
    sample_rate = models.PositiveIntegerField(default=16000)
    turn_budget = models.PositiveIntegerField(default=20)
    # Every agent reply stored, whole or cut short; of which interrupted_turn_count were cut.
    turn_count = models.PositiveIntegerField(default=0, help_text="Agent turns.")
    interrupted_turn_count = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Agent turns cut short (barge-in, error, end)."
    )
    barge_in_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    # Phone calls (channel acs): who called, and ACS's ids for the call.
    caller_id = models.CharField(max_length=100, blank=True, help_text="Redacted like text.")
    call_connection_id = models.CharField(max_length=100, blank=True)
    server_call_id = models.CharField(max_length=500, blank=True)
    correlation_id = models.CharField(max_length=100, blank=True, db_index=True)
    call_state = models.CharField(max_length=30, choices=CallState.choices, blank=True)
    # Liveness (sessions_app/liveness.py): the one socket that took the session live, the
    # process holding it, and that process's last heartbeat for it.
    connected_at = models.DateTimeField(null=True, blank=True)
    process_id = models.CharField(max_length=100, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The call's stereo WAV (RECORD_SESSIONS; sessions_app/recording), saved when it ended.
    recording = models.FileField(upload_to="recordings/", blank=True, editable=False, db_default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Event Grid delivers at least once: one phone call, one session.
            models.UniqueConstraint(
                fields=["correlation_id"],
                condition=models.Q(channel="acs"),
                name="one_session_per_phone_call",
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} session {self.id} ({self.status})"

    def save(self, *args: object, **kwargs: object) -> None:
        """Refuse to bring an ended or failed session back to active: its end is a fact."""
        if not self._state.adding and self.status == Session.Status.ACTIVE:
            stored = Session.objects.filter(pk=self.pk).values_list("status", flat=True).first()
            if stored not in (None, Session.Status.ACTIVE):
                raise ValidationError(f"session {self.pk} has {stored}; it cannot be active again")
        super().save(*args, **kwargs)


def group_name(session_id: uuid.UUID) -> str:
    """The channel-layer group that carries a session's control messages."""
    return f"session.{session_id.hex}"


def watch_group_name(session_id: uuid.UUID) -> str:
    """The channel-layer group of those following a session's events (the dashboard)."""
    return f"watch.{session_id.hex}"


class Utterance(models.Model):
    """One thing said in a session, by the caller or the agent; text is stored redacted."""

    class Role(models.TextChoices):
        USER = "user", "User"
        AGENT = "agent", "Agent"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="utterances")
    role = models.CharField(max_length=10, choices=Role.choices)
    seq = models.PositiveIntegerField()
    text = models.TextField()
    final = models.BooleanField(default=True)
    interrupted = models.BooleanField(default=False)
    heard_text = models.TextField(blank=True, help_text="What the caller actually heard.")
    interrupted_by = models.CharField(
        max_length=20,
        blank=True,
        help_text="What cut the reply: speech, text, dtmf, interrupt, operator (a barge-in), "
        "continuation (the caller went on with their turn), error (the agent failed) or "
        "session_end.",
    )
    backchannel = models.BooleanField(
        default=False,
        help_text='An acknowledgement ("mhm", "okay") said over the agent, who went on.',
    )
    start_ms = models.PositiveIntegerField(null=True, blank=True)
    end_ms = models.PositiveIntegerField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    turn_metrics = models.JSONField(
        null=True,
        blank=True,
        help_text="An agent turn's latency waterfall: the moments of its stages and barge-ins "
        "(ms on the session's clock) and the durations between them "
        "(contracts/turn-metrics.schema.json).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="one_utterance_per_seq")
        ]

    def __str__(self) -> str:
        return f"{self.role} #{self.seq}: {self.text[:60]}"


class CallEvent(models.Model):
    """One ACS callback event of a phone session, with the failure ACS reported, if any."""

    id = models.BigAutoField(primary_key=True)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="call_events")
    kind = models.CharField(max_length=60, help_text="The event type, without its namespace.")
    result_code = models.IntegerField(null=True, blank=True)
    result_subcode = models.IntegerField(null=True, blank=True)
    result_message = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "received_at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} ({self.result_code or 'ok'})"
