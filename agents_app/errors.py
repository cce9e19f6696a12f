"""The provider error taxonomy: every engine (LLM, STT, TTS) raises these, retries read them.

An engine translates its SDK's exceptions into one of these at its edge, so the rest of the
server decides about retries and error events without knowing which vendor failed.
"""

from __future__ import annotations


class ProviderError(Exception):
    """A provider call failed. `kind` names how; `retryable` says whether trying again may help."""

    kind = "unavailable"
    retryable = False

    def __init__(self, message: str, *, role: str = "agent", status: int | None = None) -> None:
        super().__init__(message)
        self.role = role
        self.status = status

    @property
    def code(self) -> str:
        """The error-event code, e.g. `agent_unavailable` or `tts_timeout`."""
        return f"{self.role}_{self.kind}"


class ProviderUnavailable(ProviderError):
    """Connection refused or reset, or a 5xx answer."""

    retryable = True


class ProviderRateLimited(ProviderUnavailable):
    """HTTP 429: slow down and try again."""


class ProviderOverloaded(ProviderError):
    """The provider is healthy but has more work queued than it takes (a shared recognition
    queue at its bound): this request was refused, not lost. Try again in a moment."""

    kind = "overloaded"
    retryable = True


class ProviderTimeout(ProviderError):
    """No answer in time."""

    kind = "timeout"
    retryable = True


class ProviderRejected(ProviderError):
    """The provider refused the request (400, 401, 403, 404, 422): retrying cannot help."""

    kind = "rejected"
