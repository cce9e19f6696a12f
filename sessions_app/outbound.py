"""How much a socket's client has left unread: the bytes daphne's transport still holds.

An ASGI application cannot see its transport, but daphne hands each one
`send = functools.partial(Server.handle_reply, protocol)`: the protocol's Twisted transport
keeps what the kernel would not take yet (`dataBuffer` from `offset`, plus `_tempDataLen`).
A client that reads keeps that near zero; one that does not lets it grow by every frame.
Under any other server (or channels' test communicator) there is nothing to read, and no
backlog is measured.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OutboundBacklog:
    transport: Any

    @classmethod
    def of(cls, send: object) -> OutboundBacklog | None:
        """The backlog behind daphne's `send` for one connection, or None elsewhere."""
        if not isinstance(send, functools.partial) or not send.args:
            return None
        transport = getattr(send.args[0], "transport", None)
        if not all(hasattr(transport, name) for name in ("dataBuffer", "offset", "_tempDataLen")):
            return None
        return cls(transport)

    def unsent(self) -> int:
        """Bytes written to the socket that the client has not taken yet."""
        t = self.transport
        return len(t.dataBuffer) - t.offset + t._tempDataLen
