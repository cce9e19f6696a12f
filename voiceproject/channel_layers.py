"""Channel layer configurations, shared by settings and by the tests that switch layers."""

from __future__ import annotations

from typing import Any

# channels_redis waits for messages with BZPOPMIN for up to 5 s; redis-py 8 also times socket
# reads out at 5 s by default, so an idle session's read failed and its socket was lost (the
# failure this timeout prevents; not a close code the server sends).
# Reads may take longer than the longest blocking wait; a dead server is still noticed then.
REDIS_SOCKET_TIMEOUT_S = 15


def in_memory_layer() -> dict[str, Any]:
    return {"BACKEND": "channels.layers.InMemoryChannelLayer"}


def redis_layer(url: str, prefix: str = "asgi") -> dict[str, Any]:
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": url, "socket_timeout": REDIS_SOCKET_TIMEOUT_S}],
            "prefix": prefix,
            # A cancel older than a few seconds is stale: it must not stop a later turn.
            "expiry": 10,
            # Longer than the longest session, so a live session never falls out of its group.
            "group_expiry": 86400,
            "capacity": 200,
        },
    }
