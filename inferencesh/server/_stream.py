"""The bytes of one event stream: retry, replay, live events, heartbeats, faults.

``event_stream`` (a task's stream, or one turn of an agent chat) is an
async generator of raw SSE bytes handed to sse-starlette, which only frames
them as HTTP chunks. Heartbeats are ours (``: ping`` after ``heartbeat``
seconds without a write), so that a stall fault can really keep the
connection silent. ``stream_response`` answers a stream request for any
such log: Last-Event-ID, the ``status`` and ``overlap`` faults, then the
bytes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Optional, cast

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


async def _sleep_unless_stopping(store: Store, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not store.stopping:
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
    log: EventLog[bytes],
    faults: TaskFaults,
    store: Store,
    *,
    after: int,
    retry_ms: int,
    heartbeat: float,
    registry: ConnectionRegistry,
    peer: Optional[tuple[str, int]],
    gauge: Gauge,
    malformed_event: bytes = b"update",
) -> AsyncIterator[bytes]:
    """Yield the SSE blocks of ``log`` with an id greater than ``after``.

    Starts with ``retry: <retry_ms>``, sends ``: ping`` after ``heartbeat``
    seconds of silence, ends after the terminal event (the log's last, once
    closed) or when ``store`` is stopping. When ``after`` is already the
    terminal event nothing at all is sent. The connection ``faults`` fire
    here, counting the events sent on this connection; a ``malformed`` one
    is sent as event type ``malformed_event``.
    """
    gauge.add(1)
    try:
        if log.closed and after >= log.last_id:
            return
        loop = asyncio.get_running_loop()
        yield b"retry: %d\n\n" % retry_ms
        last_write = loop.time()
        sent = 0
        position = after
        due: FaultSpec | None = faults.on_connection(0, False) if faults else None
        while not store.stopping:
            if due is not None:
                spec, due = due, None
                if spec.kind == "stall":
                    await _sleep_unless_stopping(store, spec.seconds)
                    last_write = loop.time()
                    continue
                if spec.kind == "malformed":
                    yield b"id: %d\nevent: %s\ndata: {not json\n\n" % (position + 1, malformed_event)
                elif spec.kind == "reset":
                    transport = registry.transport(peer)
                    if transport is not None:
                        await _faults.reset(transport)
                        await _wait_lost(registry, peer)
                return  # "close" ends here too: a clean end of the response
            if not faults:  # nothing to count per event: send what is ready in one chunk
                batch = log.since(position, _BATCH)
                if batch:
                    yield b"".join(block for _, block in batch)
                    position = batch[-1][0]
                    last_write = loop.time()
                    if log.closed and position == log.last_id:
                        return
                    continue
            pending = log.since(position, _BATCH)
            for event_id, block in pending:
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
                sent += 1
                position = event_id
                last_write = loop.time()
                if log.closed and position == log.last_id:
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
                yield PING
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
    client = request.scope.get("client")
    peer = (str(client[0]), int(client[1])) if client else None
    events = event_stream(
        log,
        faults,
        state.store,
        after=after,
        retry_ms=state.retry_ms,
        heartbeat=state.heartbeat,
        registry=state.registry,
        peer=peer,
        gauge=state.streams,
        malformed_event=malformed_event,
    )
    return cast(Response, SSEResponse(events))
