"""Redis restarting under live sessions: the session's own audio and turns go on, /health says
degraded meanwhile, and control from other processes resumes once Redis is back.

The test runs a private redis-server on a free port, so stopping it disturbs nothing else.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import AsyncClient

from tests.conftest import reset_channel_layers
from tests.integration.test_voice_playback import collect_until, start_speaking
from tests.servers import free_port
from voiceproject import channel_layers as layer_configs

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


class PrivateRedis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
            + ["--appendonly", "no", "--dir", str(self._workdir)],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


@pytest.fixture
async def private_redis(settings, tmp_path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis(tmp_path)
    redis.start()
    settings.CHANNEL_LAYERS = {"default": layer_configs.redis_layer(redis.url)}
    settings.TTS_ENGINE = "silent"
    await reset_channel_layers()
    yield redis
    redis.stop()
    # The layer's pools point at a server that is gone: drop them without flushing.
    from channels.layers import channel_layers

    channel_layers.backends.clear()


async def operator_interrupt(operator_client, session_id) -> int:
    response = await operator_client.post(f"/api/sessions/{session_id}/interrupt")
    return response.status_code


async def test_a_redis_outage_spares_the_session_and_control_comes_back(
    stream_factory, private_redis, operator_client
):
    client = await stream_factory()
    await start_speaking(client)
    assert await operator_interrupt(operator_client, client.session.id) == 202
    assert (await collect_until(client, "barge_in"))[-1]["source"] == "operator"

    private_redis.stop()

    health = await AsyncClient().get("/health")
    assert health.status_code == 503
    assert health.json()["checks"]["channel_layer"].startswith("down")
    assert health.json()["checks"]["database"] == "ok"
    # The caller's own turns need no Redis: a reply plays and an interrupt stops it.
    await start_speaking(client, text="tell me another long story about the sea and ships")
    await client.send(type="interrupt")
    assert (await collect_until(client, "barge_in"))[-1]["source"] == "interrupt"
    # Control from elsewhere cannot be delivered, and says so.
    assert await operator_interrupt(operator_client, client.session.id) == 503

    private_redis.start()

    # Cancels sent before the consumer re-joins its group are lost with the old Redis; once
    # it has re-joined (within its backoff), they arrive again.
    await start_speaking(client, text="and one more long story about the sea and the ships")
    deadline = time.monotonic() + 15
    while await operator_interrupt(operator_client, client.session.id) != 202 or not await _barged(
        client
    ):
        assert time.monotonic() < deadline, "control did not come back after Redis returned"
        await asyncio.sleep(0.2)
    health = await AsyncClient().get("/health")
    assert health.status_code == 200, health.json()


async def _barged(client, within_s: float = 0.5) -> bool:
    """Whether a barge_in arrives within `within_s` (audio frames may come before it)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        # receive_nothing, not a receive timeout: asgiref cancels the application on a timeout.
        if await client.communicator.receive_nothing(timeout=0.05):
            continue
        item = await client.receive_any()
        if isinstance(item, dict) and item["type"] == "barge_in":
            return True
    return False
