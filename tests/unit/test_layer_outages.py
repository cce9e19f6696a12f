"""A channel-layer outage is ridden out; a cancellation disguised as one is not."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from sessions_app import control


class LayerThatLosesItsConnection:
    """Like channels_redis under redis-py: cancelled mid-command, it raises ConnectionError."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.sent: list[dict] = []

    async def group_send(self, group: str, message: dict) -> None:
        if self.down:
            raise RedisConnectionError("Connection refused")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise RedisConnectionError("Error UNKNOWN while writing to socket.") from None
        self.sent.append(message)


@pytest.fixture
def layer(monkeypatch) -> LayerThatLosesItsConnection:
    fake = LayerThatLosesItsConnection()
    monkeypatch.setattr(control, "get_channel_layer", lambda: fake)
    return fake


async def test_an_outage_costs_only_the_watchers_view(layer):
    layer.down = True
    await control.publish_to_watchers(uuid.uuid4(), {"type": "session_ended"})  # no raise


async def test_a_cancelled_publisher_stays_cancelled(layer):
    task = asyncio.create_task(control.publish_to_watchers(uuid.uuid4(), {"type": "x"}))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait([task])
    assert task.cancelled(), "the cancellation was swallowed as a layer outage"


async def test_a_cancelled_control_receiver_stays_cancelled():
    async def receive() -> dict:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise RedisConnectionError("Connection closed by server.") from None
        return {}

    async def join() -> None:
        return None

    receiver = control.ControlReceiver(receive, join)
    task = asyncio.create_task(receiver())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait([task], timeout=5)
    assert task.done() and task.cancelled(), "the receiver kept retrying after its cancel"
