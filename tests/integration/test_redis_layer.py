"""The Redis layer as configured holds idle sessions: nothing times out between messages."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

pytestmark = pytest.mark.redis


async def test_waiting_longer_than_a_blocking_read_is_not_an_error(redis_layer):
    layer = get_channel_layer()
    channel = await layer.new_channel()

    # channels_redis blocks for 5 s per read; an idle session waits through several of them.
    receive = asyncio.ensure_future(layer.receive(channel))
    done, _ = await asyncio.wait([receive], timeout=6.5)
    assert not done, f"receive ended on its own: {receive.exception()!r}"

    await layer.send(channel, {"type": "playback.cancel"})
    assert await asyncio.wait_for(receive, 5) == {"type": "playback.cancel"}
