"""Integration fixtures: a fake OpenAI server on loopback, and a session talking to it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.openai_server import FakeOpenAIServer


@pytest.fixture
def fake_openai(settings) -> Iterator[FakeOpenAIServer]:
    """A fake OpenAI server; settings point the SDK at it with a fast, small retry policy."""
    server = FakeOpenAIServer().start()
    settings.OPENAI_BASE_URL = server.base_url
    settings.OPENAI_API_KEY = "test-key"
    settings.OPENAI_MODEL = "gpt-test"
    settings.OPENAI_TIMEOUT_S = 1.0
    settings.PROVIDER_RETRY_ATTEMPTS = 3
    settings.PROVIDER_RETRY_BASE_S = 0.01
    settings.PROVIDER_RETRY_MAX_WAIT_S = 0.05
    yield server
    server.stop()


@pytest.fixture
async def openai_stream(fake_openai, stream) -> Any:
    """Open a stream to the seeded "openai" agent; the fake outlives it (set up first)."""

    async def open_stream(**fields: Any) -> Any:
        return await stream(agent="openai", **fields)

    return open_stream
