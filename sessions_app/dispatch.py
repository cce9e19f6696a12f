"""A live session's message loop: the client's frames and the channel layer's messages, handed
to the consumer one at a time, at a fraction of channels' cost per frame.

channels' `await_many_dispatch` waits on both sources with `asyncio.wait`, which creates a task
for the next receive and registers and removes callbacks on both, for every message. A caller
sends 50 audio frames a second and a control message perhaps once a call: under load that
machinery was ~15 % of the event loop (bench/load.py, py-spy at 128 sessions). Here the
consumer's own task awaits the client directly; the channel layer, which is quiet, is read by a
task of its own. A lock keeps channels' promise that one handler finishes before the next
starts, whichever source the message came from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
Dispatch = Callable[[dict[str, Any]], Awaitable[None]]


async def dispatch_messages(receive: Receive, channel_receive: Receive, dispatch: Dispatch) -> None:
    """Dispatch messages from `receive` (the client) and `channel_receive` (the channel layer)
    in turn until a handler raises; that exception (channels' StopConsumer at a disconnect, or
    a failure) leaves this call, whichever source's handler raised it."""
    turn = asyncio.Lock()
    consumer_task = asyncio.current_task()
    assert consumer_task is not None
    relay_failure: list[BaseException] = []

    def fail(exc: BaseException) -> None:
        """Hand the relay's exception to the consumer's task, as if that task raised it. Call
        holding the lock: the consumer is then between handlers, never in one."""
        if relay.cancelling():  # a layer's client may turn the relay's cancel into an error
            raise asyncio.CancelledError() from exc
        relay_failure.append(exc)
        consumer_task.cancel()

    async def relay_channel_layer() -> None:
        while True:
            try:
                message = await channel_receive()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                async with turn:
                    return fail(exc)
            async with turn:
                try:
                    await dispatch(message)
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:
                    return fail(exc)

    relay = asyncio.create_task(relay_channel_layer())
    try:
        while True:
            message = await receive()
            async with turn:
                await dispatch(message)
    except asyncio.CancelledError:
        if not relay_failure or consumer_task.uncancel() > 0:
            raise  # cancelled from outside too: a cancel stays a cancel
        raise relay_failure[0] from None
    finally:
        relay.cancel()
        await asyncio.wait([relay])
