"""What a socket's consumer can see and tune of the ASGI server's transport underneath it.

An ASGI application is not given its transport, but both servers we run hand it a `send` that
leads there:

- daphne's is `functools.partial(Server.handle_reply, protocol)`: the autobahn protocol of this
  connection, on a Twisted transport. Twisted keeps what the kernel would not accept in
  `dataBuffer` (from `offset`) plus `_tempDataLen`, without limit. A frame over daphne's size
  limit (1 MiB) makes autobahn drop the TCP connection unless `failByDrop` is off, when it
  sends close code 1009 (message too big) first.
- uvicorn's is its protocol's bound `send`, on an asyncio (uvloop) transport, whose write
  buffer `get_write_buffer_size` reports. Past the transport's high-water mark (64 KiB) uvicorn
  makes every `send` wait until the client reads.

Either way the bytes the client has not taken yet are readable: a client that reads keeps them
near zero; one that does not lets them grow by every frame sent. Past the backlog limit its
session ends (consumers.py). Under any other server (or channels' test communicator) there is
nothing to reach, and none of this applies.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Protocol

_BUFFER_FIELDS = ("dataBuffer", "offset", "_tempDataLen")
_ASYNCIO_METHODS = ("get_write_buffer_size", "set_write_buffer_limits", "abort")


class ServerTransport(Protocol):
    def unsent(self) -> int:
        """Bytes written to the socket that the client has not taken yet."""

    def give_up_on_client(self) -> None:
        """The client stopped reading and its session is ending: whatever cannot reach it
        must not hold the session's tasks."""


def transport_of(send: object, backlog_limit: int) -> ServerTransport | None:
    """The transport behind the server's `send`, set up for a client that may leave up to
    `backlog_limit` bytes unread; None under a server we cannot see into."""
    daphne = DaphneTransport.of(send)
    if daphne is not None:
        daphne.close_oversized_frames_cleanly()
        return daphne
    asyncio_transport = AsyncioTransport.of(send)
    if asyncio_transport is not None:
        asyncio_transport.let_sends_through(backlog_limit)
        return asyncio_transport
    return None


@dataclass(frozen=True)
class DaphneTransport:
    protocol: Any

    @classmethod
    def of(cls, send: object) -> DaphneTransport | None:
        """The connection behind daphne's `send`, or None under another server."""
        if not isinstance(send, functools.partial) or not send.args:
            return None
        protocol = send.args[0]
        transport = getattr(protocol, "transport", None)
        if not all(hasattr(transport, name) for name in _BUFFER_FIELDS):
            return None
        return cls(protocol)

    def unsent(self) -> int:
        t = self.protocol.transport
        return len(t.dataBuffer) - t.offset + t._tempDataLen

    def give_up_on_client(self) -> None:
        """Nothing to do: Twisted queues the 4408 close behind what is unread (a client that
        reads again gets it) and never makes a send wait."""

    def close_oversized_frames_cleanly(self) -> None:
        """A frame over daphne's limit gets close 1009 rather than a dropped connection."""
        self.protocol.failByDrop = False


@dataclass(frozen=True)
class AsyncioTransport:
    transport: Any

    @classmethod
    def of(cls, send: object) -> AsyncioTransport | None:
        """The asyncio transport of the protocol `send` is bound to (uvicorn's), or None."""
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if not all(callable(getattr(transport, name, None)) for name in _ASYNCIO_METHODS):
            return None
        return cls(transport)

    def unsent(self) -> int:
        return self.transport.get_write_buffer_size()

    def let_sends_through(self, backlog_limit: int) -> None:
        """Raise the high-water mark past the backlog limit: below it a send never waits, so
        the limit, not a send that never returns, is what a client that stops reading meets."""
        self.transport.set_write_buffer_limits(high=2 * backlog_limit)

    def give_up_on_client(self) -> None:
        """Drop the connection: no close frame could pass what is unread, and sends waiting
        for the client to read are released (uvicorn raises ClientDisconnected in them)."""
        self.transport.abort()
