"""The bytes of one event stream: retry, replay, live events, heartbeats, faults.

``event_stream`` (a task's stream, or one turn of an agent chat, in either
dialect) is an async generator of raw bytes handed to sse-starlette (or, for
NDJSON, a plain streaming response), which only frames them as HTTP chunks;
a ``Framing`` says how the dialect writes each item. Heartbeats are ours (``: ping`` after ``heartbeat``
seconds without a write), so that a stall fault can really keep the
connection silent. ``stream_response`` answers a stream request for any
such log: Last-Event-ID, the ``status`` and ``overlap`` faults, then the
bytes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Generic, Optional, TypeVar, cast

import anyio
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from . import _faults
from ._conn import ConnectionRegistry
from ._events import EventLog
from ._faults import FaultSpec, TaskFaults, retry_after_header
from ._store import Store

if TYPE_CHECKING:
    from ._app import ServerState

#: sse-starlette's own ping interval: never, in practice (we send our own).
_NO_PING = 10**7
PING = b": ping\n\n"
T = TypeVar("T")
#: Most events read from the log at once (and sent in one chunk when no fault is armed).
_BATCH = 256


class Gauge:
    """A counter of things in progress, readable from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    @property
    def value(self) -> int:
        return self._value

    def add(self, delta: int) -> None:
        with self._lock:
            self._value += delta


@dataclass(frozen=True)
class Framing(Generic[T]):
    """How one dialect writes a stream: the opening bytes, each item, a heartbeat, a broken item."""

    frame: Callable[[T], bytes]
    ping: bytes
    malformed: Callable[[int], bytes]  # given the id the broken item would have had
    head: bytes = b""


def v1_framing(retry_ms: int, malformed_event: bytes = b"update") -> Framing[bytes]:
    """PROTOCOL.md: ``retry:`` first, log items already SSE blocks, ``: ping``, an event whose data is not JSON."""
    return Framing(
        frame=_identity,
        ping=PING,
        malformed=lambda next_id: b"id: %d\nevent: %s\ndata: {not json\n\n" % (next_id, malformed_event),
        head=b"retry: %d\n\n" % retry_ms,
    )


def _identity(block: bytes) -> bytes:
    return block


class SSEResponse(EventSourceResponse):
    """EventSourceResponse that ignores sse-starlette's process-wide shutdown flag.

    The flag (``AppStatus``) is global and sticky, so it would end the streams
    of every later server in the process; our servers end their streams
    themselves on stop.
    """

    def __init__(self, content: AsyncIterator[bytes], **kwargs: Any) -> None:
        super().__init__(content, ping=_NO_PING, **kwargs)

    @staticmethod
    async def _listen_for_exit_signal() -> None:
        await anyio.sleep_forever()

    @staticmethod
    async def listen_for_exit_signal() -> None:  # the name in sse-starlette 2.x
        await anyio.sleep_forever()


async def _sleep_unless_ended(ended: Callable[[], bool], seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not ended():
        left = deadline - loop.time()
        if left <= 0:
            return
        await asyncio.sleep(min(left, 0.05))


async def _wait_lost(registry: ConnectionRegistry, peer: Any) -> None:
    """Wait (bounded) until uvicorn has seen the connection go."""
    for _ in range(200):
        if registry.transport(peer) is None:
            return
        await asyncio.sleep(0.005)


async def event_stream(
    log: EventLog[T],
    faults: TaskFaults,
    store: Store,
    *,
    after: int,
    heartbeat: float,
    registry: ConnectionRegistry,
    peer: Optional[tuple[str, int]],
    gauge: Gauge,
    framing: Framing[T],
    first: Sequence[T] = (),
) -> AsyncIterator[bytes]:
    """Yield the framed items of ``log`` with an id greater than ``after``.

    ``first`` items (a hosted stream's opening snapshot) go out before them,
    counted as events by the faults. Starts with ``framing.head``, sends
    ``framing.ping`` after ``heartbeat`` seconds of silence, ends after the
    terminal item (the log's last, once closed) or when ``store`` is
    stopping. With no ``first`` items and ``after`` already the terminal
    event nothing at all is sent. The connection ``faults`` fire here,
    counting the items sent on this connection.

    It also ends, writing nothing more, as soon as the client has left: once
    its connection's transport is closing (the peer closed or reset it). The
    ASGI server would drop later writes silently, but only after asyncio has
    reported the connection lost; until then they go into the closing
    transport, where asyncio warns ``socket.send() raised exception.``.
    """
    gauge.add(1)
    try:
        if not first and log.closed and after >= log.last_id:
            return
        loop = asyncio.get_running_loop()
        transport = registry.transport(peer)

        def ended() -> bool:
            """The server is stopping or the client has left (never known without our protocol's transport)."""
            return store.stopping or (transport is not None and transport.is_closing())

        if framing.head:
            yield framing.head
        last_write = loop.time()
        sent = 0
        position = after
        opening = list(first)

        def ready() -> list[tuple[int, T]]:
            items = log.since(position, _BATCH)
            return [(position, item) for item in opening] + items if opening else items

        def finished() -> bool:
            return not opening and log.closed and position == log.last_id

        due: FaultSpec | None = faults.on_connection(0, False) if faults else None
        while not ended():
            if due is not None:
                spec, due = due, None
                if spec.kind == "stall":
                    await _sleep_unless_ended(ended, spec.seconds)
                    last_write = loop.time()
                    continue
                if spec.kind == "mute":
                    while not ended():  # heartbeats only, for as long as the client stays
                        await _sleep_unless_ended(ended, heartbeat)
                        if not ended():
                            yield framing.ping
                    return
                if spec.kind == "malformed":
                    yield framing.malformed(position + 1)
                elif spec.kind == "reset":
                    transport = registry.transport(peer)
                    if transport is not None:
                        await _faults.reset(transport)
                        await _wait_lost(registry, peer)
                return  # "close" ends here too: a clean end of the response
            if not faults:  # nothing to count per event: send what is ready in one chunk
                batch = ready()
                if batch:
                    yield b"".join(framing.frame(item) for _, item in batch)
                    opening.clear()
                    position = batch[-1][0]
                    last_write = loop.time()
                    if finished():
                        return
                    continue
            pending = ready()
            for event_id, item in pending:
                if ended():
                    return
                block = framing.frame(item)
                next_fault = faults.on_connection(sent, True) if faults else None
                if next_fault is not None and next_fault.kind == "cut":
                    yield block[: len(block) // 2]
                    return
                if next_fault is not None and next_fault.kind == "torn":
                    transport = registry.transport(peer)
                    if transport is not None:
                        await _faults.tear(transport, block)
                        await _wait_lost(registry, peer)
                    return
                yield block
                if opening:
                    opening.pop(0)
                sent += 1
                position = event_id
                last_write = loop.time()
                if finished():
                    return  # that was the terminal event
                due = faults.on_connection(sent, False) if faults else None
                if due is not None:
                    break
            if pending:
                continue
            if log.closed:
                return
            idle = loop.time() - last_write
            if idle >= heartbeat:
                yield framing.ping
                last_write = loop.time()
                continue
            await log.wait(position, heartbeat - idle)
    finally:
        gauge.add(-1)


def last_event_id(request: Request) -> int | None:
    """The request's ``Last-Event-ID`` (None when absent or blank); 400 unless a non-negative integer."""
    raw = request.headers.get("last-event-id")
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip()
    if not text.isdigit() or not text.isascii():
        raise HTTPException(400, f"Last-Event-ID must be a non-negative integer, got {raw!r}")
    return int(text)


def peer_of(request: Request) -> tuple[str, int] | None:
    """The TCP peer of ``request`` (the key of its connection in the registry)."""
    client = request.scope.get("client")
    return (str(client[0]), int(client[1])) if client else None


def stream_response(
    request: Request,
    state: ServerState,
    log: EventLog[bytes],
    faults: TaskFaults,
    *,
    malformed_event: bytes = b"update",
) -> Response:
    """Answer a stream request for ``log``: replay after ``Last-Event-ID``, then live.

    Raises ``HTTPException`` (problem+json) for a bad ``Last-Event-ID`` and
    for a due ``status`` fault; an ``overlap`` fault moves the replay back.
    """
    resume_at = last_event_id(request)
    fault = faults.fire("status")
    if fault is not None:
        detail = f"injected fault: {fault.kind} {fault.code}"
        raise HTTPException(fault.code, detail, retry_after_header(fault.retry_after))
    after = resume_at or 0
    if resume_at is not None:
        overlap = faults.fire("overlap")
        if overlap is not None:
            after = max(0, resume_at - overlap.back)
    peer = peer_of(request)
    events = event_stream(
        log,
        faults,
        state.store,
        after=after,
        heartbeat=state.heartbeat,
        registry=state.registry,
        peer=peer,
        gauge=state.streams,
        framing=v1_framing(state.retry_ms, malformed_event),
    )
    return cast(Response, SSEResponse(events))
