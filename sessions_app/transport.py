"""What a socket's consumer can see and tune of daphne's transport underneath it.

An ASGI application is not given its transport, but daphne hands each one
`send = functools.partial(Server.handle_reply, protocol)`: the autobahn protocol of this
connection, on a Twisted transport. Two things are read or set there:

- the bytes the client has not taken yet: Twisted keeps what the kernel would not accept in
  `dataBuffer` (from `offset`) plus `_tempDataLen`. A client that reads keeps it near zero;
  one that does not lets it grow by every frame sent.
- how a frame over daphne's size limit (1 MiB) is refused: autobahn drops the TCP connection
  unless `failByDrop` is off, when it sends close code 1009 (message too big) first.

Under any other server (or channels' test communicator) there is nothing to reach, and
neither applies.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

_BUFFER_FIELDS = ("dataBuffer", "offset", "_tempDataLen")


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
        """Bytes written to the socket that the client has not taken yet."""
        t = self.protocol.transport
        return len(t.dataBuffer) - t.offset + t._tempDataLen

    def close_oversized_frames_cleanly(self) -> None:
        """A frame over daphne's limit gets close 1009 rather than a dropped connection."""
        self.protocol.failByDrop = False
