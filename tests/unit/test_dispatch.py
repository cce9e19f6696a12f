"""A live session's message loop: both sources are dispatched, one handler at a time, and a
handler's exception (or a cancellation) leaves it without leaving a task or a cancel behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.exceptions import StopConsumer
from redis.exceptions import ConnectionError as RedisConnectionError

from sessions_app.dispatch import dispatch_messages

# Only a guard against a hang: every wait below ends on an event, never on a clock.
GUARD_S = 10


async def within(awaitable):
    return await asyncio.wait_for(awaitable, GUARD_S)


async def outcome(task: asyncio.Task):
    """The task's result (or exception) once it is done. A hang fails the test without
    cancelling the task: a cancel could itself make dispatch_messages leave."""
    done, _ = await asyncio.wait([task], timeout=GUARD_S)
    assert done, "dispatch_messages did not leave"
    return task.result()


class Source:
    """A fake `receive`: hands out what the test puts, in order, and notes each call, each
    message taken and a cancellation while it waited."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.taken: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.waiting = asyncio.Event()  # a call is waiting on an empty queue
        self.cancelled = asyncio.Event()
        self.calls = 0

    def put(self, id: str, **extra: Any) -> None:
        self.queue.put_nowait({"type": "test.message", "id": id, **extra})

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.queue.empty():
            self.waiting.set()
        try:
            message = await self.queue.get()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        finally:
            self.waiting.clear()
        # The caller goes on to its lock in this same step: once the test sees this, the
        # caller is either dispatching the message or waiting for its turn.
        self.taken.put_nowait(message)
        return message


class Handler:
    """A fake `dispatch`: logs each handler's start and end, waits on a message's `gate`, then
    raises its `error`, if it has them."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.started: dict[str, asyncio.Event] = {}
        self.finished: asyncio.Queue[str] = asyncio.Queue()
        self.running = 0
        self.most_running = 0
        self.cancelled: list[str] = []

    def start_of(self, id: str) -> asyncio.Event:
        return self.started.setdefault(id, asyncio.Event())

    def dispatched(self) -> list[str]:
        return [id for event, id in self.log if event == "start"]

    async def __call__(self, message: dict[str, Any]) -> None:
        id = message["id"]
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        self.log.append(("start", id))
        self.start_of(id).set()
        try:
            if "gate" in message:
                await message["gate"].wait()
            if "error" in message:
                raise message["error"]
        except asyncio.CancelledError:
            self.cancelled.append(id)
            raise
        finally:
            self.running -= 1
            self.log.append(("end", id))
        self.finished.put_nowait(id)


@pytest.fixture
def client() -> Source:
    return Source()


@pytest.fixture
def layer() -> Source:
    return Source()


@pytest.fixture
def handler() -> Handler:
    return Handler()


@pytest.fixture
async def loop_task(client, layer, handler):
    """Start dispatch_messages in a task of its own; at teardown, leave no task behind."""
    tasks: list[asyncio.Task] = []

    def start() -> asyncio.Task:
        task = asyncio.create_task(dispatch_messages(client, layer, handler))
        tasks.append(task)
        return task

    yield start
    for task in tasks:
        task.cancel()
    if tasks:
        await within(asyncio.wait(tasks))


async def both_waiting(client: Source, layer: Source) -> None:
    await within(client.waiting.wait())
    await within(layer.waiting.wait())


async def finished(handler: Handler, count: int) -> list[str]:
    return [await within(handler.finished.get()) for _ in range(count)]


async def test_client_messages_are_dispatched_in_the_order_received(
    client, layer, handler, loop_task
):
    """Audio frames reordered would be garbled speech."""
    for id in ["c1", "c2", "c3", "c4", "c5"]:
        client.put(id)
    loop_task()

    assert await finished(handler, 5) == ["c1", "c2", "c3", "c4", "c5"]
    assert handler.dispatched() == ["c1", "c2", "c3", "c4", "c5"]


async def test_channel_layer_messages_are_dispatched_while_the_client_is_quiet(
    client, layer, handler, loop_task
):
    """An operator's control message must arrive though the caller sends nothing."""
    loop_task()
    await both_waiting(client, layer)

    layer.put("l1")
    layer.put("l2")

    assert await finished(handler, 2) == ["l1", "l2"]
    assert client.calls == 1, "the client was asked for one message only, and sent none"


async def test_both_sources_are_dispatched_each_in_its_own_order(client, layer, handler, loop_task):
    """Interleaving between the sources is free, but each keeps its own order."""
    for n in range(1, 4):
        client.put(f"c{n}")
        layer.put(f"l{n}")
    loop_task()

    done = await finished(handler, 6)

    assert sorted(done) == ["c1", "c2", "c3", "l1", "l2", "l3"]
    assert [id for id in done if id.startswith("c")] == ["c1", "c2", "c3"]
    assert [id for id in done if id.startswith("l")] == ["l1", "l2", "l3"]
    assert handler.most_running == 1


async def test_a_channel_layer_message_waits_for_a_client_handler_to_finish(
    client, layer, handler, loop_task
):
    """channels' promise: one handler finishes before the next starts."""
    gate = asyncio.Event()
    loop_task()
    await both_waiting(client, layer)
    client.put("c1", gate=gate)
    await within(handler.start_of("c1").wait())

    layer.put("l1")
    await within(layer.taken.get())  # the relay holds it: dispatching it, or waiting its turn

    assert handler.dispatched() == ["c1"], "l1 was dispatched while c1's handler ran"
    gate.set()
    assert await finished(handler, 2) == ["c1", "l1"]
    assert handler.log == [("start", "c1"), ("end", "c1"), ("start", "l1"), ("end", "l1")]
    assert handler.most_running == 1


async def test_a_client_message_waits_for_a_channel_layer_handler_to_finish(
    client, layer, handler, loop_task
):
    """The same promise the other way round: a slow control handler holds back the audio."""
    gate = asyncio.Event()
    loop_task()
    await both_waiting(client, layer)
    layer.put("l1", gate=gate)
    await within(handler.start_of("l1").wait())

    client.put("c1")
    client.put("c2")
    await within(client.taken.get())  # the consumer holds c1: dispatching it, or waiting

    assert handler.dispatched() == ["l1"], "c1 was dispatched while l1's handler ran"
    assert client.queue.qsize() == 1, "the consumer took c2 before c1 had its turn"
    gate.set()
    assert await finished(handler, 3) == ["l1", "c1", "c2"]
    assert handler.log == [
        ("start", "l1"),
        ("end", "l1"),
        ("start", "c1"),
        ("end", "c1"),
        ("start", "c2"),
        ("end", "c2"),
    ]
    assert handler.most_running == 1


@pytest.mark.parametrize(
    "error",
    [StopConsumer(), RuntimeError("the client handler failed")],
    ids=lambda error: type(error).__name__,
)
async def test_a_client_handlers_exception_leaves_and_cancels_the_relay(
    client, layer, handler, error
):
    """A disconnect (StopConsumer) or a failure ends the loop; the relay must not outlive it,
    or it would go on taking the channel layer's messages for a consumer that has gone."""
    before = asyncio.all_tasks()
    task = asyncio.create_task(dispatch_messages(client, layer, handler))
    await both_waiting(client, layer)

    client.put("c1")
    client.put("boom", error=error)
    client.put("c3")
    with pytest.raises(type(error)) as caught:
        await outcome(task)

    assert caught.value is error
    assert handler.dispatched() == ["c1", "boom"]
    assert client.queue.qsize() == 1, "c3 was taken after the handler raised"
    assert layer.cancelled.is_set(), "the relay's channel_receive was not cancelled"
    assert layer.calls == 1, "channel_receive was called again"
    assert asyncio.all_tasks() - before == set(), "a task was left behind"


async def test_a_client_handlers_exception_cancels_a_relay_waiting_for_its_turn(
    client, layer, handler
):
    """A channel-layer message taken while the client's handler ran is dropped, not
    dispatched after the loop has ended."""
    gate = asyncio.Event()
    error = RuntimeError("the client handler failed")
    before = asyncio.all_tasks()
    task = asyncio.create_task(dispatch_messages(client, layer, handler))
    await both_waiting(client, layer)
    client.put("boom", gate=gate, error=error)
    await within(handler.start_of("boom").wait())
    layer.put("l1")
    await within(layer.taken.get())

    gate.set()
    with pytest.raises(RuntimeError) as caught:
        await outcome(task)

    assert caught.value is error
    assert handler.dispatched() == ["boom"], "l1 was dispatched after the loop failed"
    assert asyncio.all_tasks() - before == set(), "a task was left behind"


async def run_catching(coroutine) -> tuple[BaseException | None, int]:
    """Await `coroutine` as the consumer's task does; return what it raised and how many
    cancellations this task still has pending after it (and after one more suspension)."""
    raised: BaseException | None = None
    try:
        await coroutine
    except BaseException as exc:  # CancelledError too: leaving with it is a failure here
        raised = exc
    cancelling = asyncio.current_task().cancelling()
    await asyncio.sleep(0)  # a cancel still pending would be delivered here
    return raised, cancelling


@pytest.mark.parametrize(
    "error",
    [StopConsumer(), RuntimeError("the control handler failed")],
    ids=lambda error: type(error).__name__,
)
async def test_a_channel_layer_handlers_exception_leaves_the_loop_as_it_was_raised(
    client, layer, handler, error
):
    """A control message that ends the session (or fails) must end the loop even while the
    consumer's task waits on the client, and leave that task uncancelled: a cancel left
    counted would be taken for a server shutdown, or stop the consumer's cleanup."""
    before = asyncio.all_tasks()
    task = asyncio.create_task(run_catching(dispatch_messages(client, layer, handler)))
    await both_waiting(client, layer)

    layer.put("l1")
    layer.put("boom", error=error)
    layer.put("l3")
    raised, cancelling = await outcome(task)

    assert raised is error
    assert type(raised) is type(error) and str(raised) == str(error)
    assert cancelling == 0, "the loop's task was left cancelling"
    assert not task.cancelled()
    assert handler.dispatched() == ["l1", "boom"]
    assert layer.queue.qsize() == 1, "l3 was taken after the handler raised"
    assert client.cancelled.is_set(), "the consumer's wait on the client was not ended"
    assert asyncio.all_tasks() - before == set(), "a task was left behind"


async def test_a_channel_layer_handlers_exception_reaches_a_consumer_waiting_its_turn(
    client, layer, handler
):
    """The consumer may be waiting for the lock, not for the client, when the relay fails;
    the client's message it holds is not dispatched."""
    gate = asyncio.Event()
    error = RuntimeError("the control handler failed")
    task = asyncio.create_task(run_catching(dispatch_messages(client, layer, handler)))
    await both_waiting(client, layer)
    layer.put("boom", gate=gate, error=error)
    await within(handler.start_of("boom").wait())
    client.put("c1")
    await within(client.taken.get())

    gate.set()
    raised, cancelling = await outcome(task)

    assert raised is error
    assert cancelling == 0, "the loop's task was left cancelling"
    assert handler.dispatched() == ["boom"], "c1 was dispatched after the loop failed"


async def test_cancelling_the_loop_raises_cancelled_and_cancels_the_relay(client, layer, handler):
    """A server shutting down cancels the consumer: that must not be swallowed, and the
    relay must go with it."""
    before = asyncio.all_tasks()
    task = asyncio.create_task(dispatch_messages(client, layer, handler))
    await both_waiting(client, layer)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outcome(task)

    assert task.cancelled()
    assert client.cancelled.is_set()
    assert layer.cancelled.is_set(), "the relay's channel_receive was not cancelled"
    assert handler.log == []
    assert asyncio.all_tasks() - before == set(), "a task was left behind"


async def test_cancelling_the_loop_cancels_a_running_channel_layer_handler(client, layer, handler):
    """A cancel that reaches the relay's handler mid-way is the loop's own cancellation, not a
    handler failure: it leaves as CancelledError."""
    gate = asyncio.Event()
    before = asyncio.all_tasks()
    task = asyncio.create_task(dispatch_messages(client, layer, handler))
    await both_waiting(client, layer)
    layer.put("l1", gate=gate)
    await within(handler.start_of("l1").wait())

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outcome(task)

    assert task.cancelled()
    assert handler.cancelled == ["l1"]
    assert asyncio.all_tasks() - before == set(), "a task was left behind"


class SourceThatLosesItsConnection(Source):
    """Like channels_redis under redis-py (test_layer_outages.py, control.raise_if_cancelled):
    cancelled mid-command, it raises ConnectionError in place of CancelledError."""

    async def __call__(self) -> dict[str, Any]:
        try:
            return await super().__call__()
        except asyncio.CancelledError:
            raise RedisConnectionError("Connection closed by server.") from None


async def test_a_disconnect_stays_a_disconnect_when_the_layer_turns_its_cancel_into_an_error(
    client, handler
):
    """Cancelling the relay at a disconnect is the loop's own doing, not a layer failure."""
    layer = SourceThatLosesItsConnection()
    task = asyncio.create_task(run_catching(dispatch_messages(client, layer, handler)))
    await both_waiting(client, layer)

    client.put("bye", error=StopConsumer())
    raised, cancelling = await outcome(task)

    assert layer.cancelled.is_set()
    assert type(raised) is StopConsumer, f"left with {type(raised).__name__}"
    assert cancelling == 0, "the loop's task was left cancelling"
