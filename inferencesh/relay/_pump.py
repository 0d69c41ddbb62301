"""The browser side of one relayed stream: a WSGI response iterable of SSE bytes.

A reader thread iterates the SDK's ``TaskStream`` (which resumes upstream
drops by itself) and queues each ``TaskUpdate``; the WSGI server's thread
iterates the ``EventPump``, which turns each update into one unnamed event
and hands it over at once, so the server writes it at once.

Heartbeats: the SDK consumes the upstream's ``: ping`` comments (they keep its
idle timeout from firing) and never surfaces them, so the pump passes them on
by time: when nothing was written to the browser for ``heartbeat`` seconds
(the upstream's own interval by default), it writes ``: ping``. The browser
thus sees a heartbeat wherever the upstream sent one, and also while the SDK
is resuming a dropped upstream.

A browser that goes away is noticed three ways, whichever comes first: the
server's disconnect hook (waitress' ``waitress.client_disconnected``, polled
every ``poll`` seconds while the upstream is quiet), a write that fails (the
server then calls ``close()``), or ``close()`` from any thread. Each closes
the upstream ``TaskStream`` at once, which wakes its blocked read.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Any, Callable, Optional, Union

from .._stream import TaskStream
from ..models import TaskUpdate

log = logging.getLogger("inferencesh.relay")

PING = b": ping\n\n"


def encode_update(update: TaskUpdate) -> bytes:
    """One unnamed SSE event: ``id: N`` and the TaskUpdate JSON with ``status`` as its lowercase name."""
    payload = update.to_wire()
    # json.dumps escapes CR and LF inside strings, so the data is always one line.
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return b"id: %d\ndata: %s\n\n" % (update.event_id, data.encode("utf-8"))


class _End:
    """Queued by the reader when the upstream stream ended normally."""


_END = _End()
_Item = Union[TaskUpdate, _End, Exception]


class Gauge:
    """A count of pumps alive, readable from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, delta: int) -> None:
        with self._lock:
            self.value += delta


class EventPump:
    """Iterating yields the SSE bytes to send; ``close()`` (idempotent, any thread) ends it.

    ``stream`` is the upstream ``TaskStream``; ``prefetched`` updates already
    read from it go first. ``retry_ms`` is sent first as ``retry:`` (None: a
    ``: relay`` comment instead, so headers go out at once either way).
    ``heartbeat`` and ``poll`` are seconds; ``client_gone`` is the server's
    disconnect check, if it has one. ``drop_after`` ends the response after
    that many events (the browser resumes with ``Last-Event-ID``). Ends after
    the terminal event, when the upstream ends or fails (logged; the browser
    reconnects and the relay resumes), or when the browser is gone.
    """

    def __init__(
        self,
        stream: TaskStream,
        *,
        prefetched: tuple[TaskUpdate, ...] = (),
        heartbeat: float,
        poll: float,
        retry_ms: Optional[int],
        client_gone: Optional[Callable[[], bool]] = None,
        drop_after: Optional[int] = None,
        gauge: Optional[Gauge] = None,
    ) -> None:
        self._stream = stream
        self._task_id = stream.task_id
        self._queue: queue.Queue[_Item] = queue.Queue()
        for update in prefetched:
            self._queue.put(update)
        self._heartbeat = heartbeat
        self._poll = poll
        self._retry_ms = retry_ms
        self._client_gone = client_gone
        self._drop_after = drop_after
        self._gauge = gauge
        self._lock = threading.Lock()
        self._closed = False
        self._finishing = False
        self._reader: Optional[threading.Thread] = None
        self._sent = 0
        self._last_write = time.monotonic()
        if gauge is not None:
            gauge.add(1)

    # -- the upstream side ------------------------------------------------

    def _read(self) -> None:
        try:
            for update in self._stream:
                self._queue.put(update)
                if self._closed:
                    return
        except Exception as exc:  # reported to the pump, which logs it and ends the response
            if not self._closed:  # after close() a failing read is expected, not news
                self._queue.put(exc)
        else:
            self._queue.put(_END)

    def _start_reader(self) -> None:
        with self._lock:
            if self._closed or self._reader is not None:
                return
            self._reader = threading.Thread(target=self._read, name=f"inferencesh-relay-{self._task_id}", daemon=True)
            self._reader.start()

    # -- the browser side -------------------------------------------------

    def __iter__(self) -> EventPump:
        return self

    def __next__(self) -> bytes:
        if self._closed or self._finishing:
            self.close()
            raise StopIteration
        if self._reader is None:
            self._start_reader()
            self._last_write = time.monotonic()
            return b"retry: %d\n\n" % self._retry_ms if self._retry_ms is not None else b": relay\n\n"
        while True:
            if self._closed:
                raise StopIteration
            if self._client_gone is not None and self._client_gone():
                log.info("browser left the stream of task %s; closing the upstream", self._task_id)
                self.close()
                raise StopIteration
            idle = time.monotonic() - self._last_write
            if idle >= self._heartbeat:
                self._last_write = time.monotonic()
                return PING
            wait = self._heartbeat - idle
            if self._client_gone is not None:
                wait = min(wait, self._poll)
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                continue
            return self._handle(item)

    def _handle(self, item: _Item) -> bytes:
        if isinstance(item, TaskUpdate):
            self._sent += 1
            self._last_write = time.monotonic()
            if item.is_terminal:
                self._finishing = True
            elif self._drop_after is not None and self._sent >= self._drop_after:
                log.info("ending the stream of task %s after %d events (drop_after)", self._task_id, self._sent)
                self._finishing = True
            return encode_update(item)
        if isinstance(item, Exception):
            log.warning("upstream stream of task %s failed: %s", self._task_id, _describe(item))
        self.close()
        raise StopIteration

    def close(self) -> None:
        """Stop relaying and close the upstream stream (its blocked read wakes at once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stream.close()
        if self._gauge is not None:
            self._gauge.add(-1)

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()


def _describe(exc: Any) -> str:
    return f"{type(exc).__name__}: {exc}"
