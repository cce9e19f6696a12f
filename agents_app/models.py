"""The engines' records: which agent answers, each agent turn (Task) and each tool call."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class AgentManager(models.Manager["Agent"]):
    async def afor_session(self, name: str | None) -> Agent:
        """The named agent, or else the first agent of AGENT_STRATEGY (created when missing)."""
        if name:
            return await self.aget(name=name)
        strategy = settings.AGENT_STRATEGY
        agent = await self.filter(strategy=strategy).order_by("created_at").afirst()
        if agent is None:
            agent, _ = await self.aget_or_create(name=strategy, defaults={"strategy": strategy})
        return agent


class Agent(models.Model):
    """A configured agent: which strategy answers, with what instructions, voice and tools."""

    class Strategy(models.TextChoices):
        ECHO = "echo", "Echo"
        RULES = "rules", "Rules"
        OPENAI = "openai", "OpenAI"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    strategy = models.CharField(max_length=20, choices=Strategy.choices, default=Strategy.ECHO)
    model = models.CharField(max_length=100, blank=True, help_text="LLM model for 'openai'.")
    instructions = models.TextField(blank=True, help_text="System instructions; never dropped.")
    voice = models.CharField(max_length=50, blank=True, help_text="TTS voice; blank: TTS_VOICE.")
    turn_budget = models.PositiveIntegerField(
        null=True, blank=True, help_text="Turns kept in context; blank: CONTEXT_TURN_BUDGET."
    )
    tools = models.JSONField(default=list, blank=True, help_text="Names of enabled tools.")
    greeting = models.TextField(
        blank=True, help_text="Said first when a phone call connects; blank: wait for the caller."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AgentManager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.strategy})"


class Task(models.Model):
    """One unit of agent work in a session, usually the reply to one user utterance."""

    class Kind(models.TextChoices):
        AGENT_TURN = "agent_turn", "Agent turn"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(
        "sessions_app.Session", on_delete=models.CASCADE, related_name="tasks"
    )
    utterance = models.ForeignKey(
        "sessions_app.Utterance",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks",
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.AGENT_TURN)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    input = models.JSONField(default=dict, blank=True)
    output = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.status}"

    @property
    def duration_ms(self) -> int | None:
        if self.started_at and self.finished_at:
            return int((self.finished_at - self.started_at).total_seconds() * 1000)
        return None


class ToolInvocation(models.Model):
    """One tool call made by an agent during a task; arguments are stored redacted."""

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="tool_invocations")
    tool = models.CharField(max_length=100)
    arguments = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.tool} {self.status}"
