"""``TaskStream``: a task's updates as a plain iterator, resumed after any drop.

The path of one update is short and one-way: socket bytes → ``raw.read1`` →
``SSEDecoder`` (sseclient-py, made exact) → ``TaskUpdate`` → dedupe and
bookkeeping → the caller's ``for``. Reconnecting sits beside that path: after
a drop (a reset, a torn chunk, an idle read timeout, or a clean end before a
terminal status) the stream waits max(the server's ``retry:``, exponential
backoff with jitter) and reopens with ``Last-Event-ID`` set to the last event
it delivered; events with ids it already delivered are skipped, so the caller
never sees an id twice and never misses one the server sent. The tenacity
policy wraps only that reconnect step (PROTOCOL.md, "Task event stream").
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Callable, Optional

import requests
import urllib3.exceptions

from ._errors import ConflictError, ConnectionLost, ProtocolError
from ._sse import ServerSentEvent, SSEDecoder
from ._transport import Retryable, Transport, quote_id
from ._watchdog import CANCEL, CLOSE, TIMEOUT, _Abort
from .models import Progress, Task, TaskStatus, TaskUpdate

if TYPE_CHECKING:
    from types import TracebackType

log = logging.getLogger("inferencesh")

_READ_SIZE = 64 * 1024
_UPDATE_TYPES = frozenset({"update", "message"})
_READ_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    OSError,
    ValueError,
)


class _Drop(Exception):
    """Internal: the connection ended before a terminal status; reconnect."""


class _StreamState:
    """Everything the reading generator needs; holds no reference to the ``TaskStream``."""

    def __init__(
        self,
        transport: Transport,
        task_id: str,
        scope: _Abort,
        *,
        last_event_id: Optional[int],
        max_reconnects: int,
        idle_timeout: float,
        max_event_bytes: int,
        cancel_task_on_abort: bool,
    ) -> None:
        self.transport = transport
        self.task_id = task_id
        self.scope = scope
        self.last_event_id = last_event_id
        self.max_reconnects = max_reconnects
        self.idle_timeout = idle_timeout
        self.max_event_bytes = max_event_bytes
        self.cancel_task_on_abort = cancel_task_on_abort
        self.retry_ms: Optional[int] = None
        self.response: Optional[requests.Response] = None
        self.status: Optional[TaskStatus] = None
        self.progress: Optional[Progress] = None
        self.logs: list[str] = []
        self.result: Optional[TaskUpdate] = None
        self.first_seen: Optional[float] = None
        self.last_seen: Optional[float] = None
        self.final_task: Optional[Task] = None

    # -- one connection -------------------------------------------------

    def open(self) -> Iterator[TaskUpdate]:
        """Open the stream from the last delivered id; the iterator yields only new updates."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        path = f"/tasks/{quote_id(self.task_id, 'task_id')}/stream"
        response = self.transport.send(
            "GET", path, scope=self.scope, headers=headers, stream=True, read_timeout=self.idle_timeout
        )
        self.response = response
        content_type = response.headers.get("Content-Type", "")
        if not content_type.split(";")[0].strip().lower() == "text/event-stream":
            self.release()
            raise ProtocolError(
                f"stream answered 200 with Content-Type {content_type or 'none'!r}, not text/event-stream"
            )
        decoder = SSEDecoder(self.max_event_bytes)
        if self.last_event_id is not None:
            decoder.last_event_id = str(self.last_event_id)
        return self._updates(decoder, decoder.iter_events(self._chunks(response)))

    def _chunks(self, response: requests.Response) -> Iterator[bytes]:
        raw = response.raw
        while True:
            try:
                chunk = raw.read1(_READ_SIZE)
            except _READ_ERRORS as exc:
                self.scope.check()
                if self.scope.reason == CLOSE:
                    return
                raise _Drop(f"{type(exc).__name__}: {exc}") from None
            if not chunk:
                self.scope.check()
                return
            yield chunk

    def _updates(self, decoder: SSEDecoder, events: Iterator[ServerSentEvent]) -> Iterator[TaskUpdate]:
        for event in events:
            if decoder.retry is not None:
                self.retry_ms = decoder.retry
            if event.event not in _UPDATE_TYPES:
                continue
            event_id = _event_id(event)
            if self.last_event_id is not None and event_id <= self.last_event_id:
                continue
            try:
                data = json.loads(event.data)
            except ValueError:
                raise ProtocolError("event data is not JSON", event_id=event.id) from None
            yield TaskUpdate.from_wire(event_id, data)

    def release(self) -> None:
        response, self.response = self.response, None
        if response is not None:
            response.close()
        self.scope.detach()

    # -- reconnecting ---------------------------------------------------

    def connect(self, drop: Optional[_Drop]) -> Optional[tuple[Iterator[TaskUpdate], TaskUpdate]]:
        """The reconnect step: (re)open until a new update arrives.

        ``drop`` is the failure that led here; it counts as the failed first
        attempt, so tenacity waits before the next one. Returns None when the
        task turns out to be finished already (an empty stream on a terminal
        task). Raises ``ConnectionLost`` after ``max_reconnects`` attempts in a
        row without a new event.
        """
        pending: Optional[Exception] = drop
        try:
            for attempt in self.transport.policy(
                self.scope, server_delay=self._server_delay, attempts=self.max_reconnects + 1
            ):
                with attempt:
                    if pending is not None:
                        failed, pending = pending, None
                        raise Retryable(failed)
                    if attempt.retry_state.attempt_number > 1:
                        log.info("reconnecting to task %s with Last-Event-ID %s", self.task_id, self.last_event_id)
                    return self._open_until_update()
        except Retryable as exc:
            error = exc.error
            reason = error.reason if isinstance(error, ConnectionLost) else str(error)
            raise ConnectionLost(reason, task_id=self.task_id, last_event_id=self.last_event_id) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _open_until_update(self) -> Optional[tuple[Iterator[TaskUpdate], TaskUpdate]]:
        updates = self.open()
        try:
            first = next(updates, None)
        except _Drop as exc:
            self.release()
            raise Retryable(exc) from None
        except BaseException:
            self.release()
            raise
        if first is not None:
            return updates, first
        self.release()
        if self.last_event_id is not None:
            # PROTOCOL.md: a stream that closes empty after Last-Event-ID may mean the task is done.
            task = Task.from_wire(
                self.transport.call("GET", f"/tasks/{quote_id(self.task_id, 'task_id')}", scope=self.scope)
            )
            if task.is_terminal:
                self.final_task = task
                self.status = task.status
                return None
        raise Retryable(_Drop("stream closed before a terminal status"))

    def _server_delay(self) -> Optional[float]:
        return None if self.retry_ms is None else self.retry_ms / 1000.0

    # -- bookkeeping ----------------------------------------------------

    def record(self, update: TaskUpdate) -> None:
        now = time.monotonic()
        if self.first_seen is None:
            self.first_seen = now
        self.last_event_id = update.event_id
        self.status = update.status
        if update.progress is not None:
            self.progress = update.progress
        self.logs.extend(update.logs)
        if update.is_terminal:
            self.result = update
            self.last_seen = now

    def cancel_on_server(self) -> None:
        """Best effort ``POST /tasks/{id}/cancel`` after an abort (its own short deadline)."""
        scope = _Abort(timeout=10.0)
        try:
            self.transport.call("POST", f"/tasks/{quote_id(self.task_id, 'task_id')}/cancel", scope=scope, retry=False)
            log.info("cancelled task %s on the server", self.task_id)
        except ConflictError:
            pass  # already finished: nothing to cancel
        except Exception as exc:  # the caller already has the abort's own error to handle
            log.warning("could not cancel task %s on the server: %s", self.task_id, exc)
        finally:
            scope.close()


def _event_id(event: ServerSentEvent) -> int:
    text = event.id
    if not (text.isascii() and text.isdigit()):
        raise ProtocolError("event id is not a non-negative decimal integer", event_id=text)
    return int(text)


def _run(state: _StreamState) -> Generator[TaskUpdate, None, None]:
    """The reading generator: connect, yield new updates, reconnect after drops, stop at a terminal one."""
    interrupted = False
    try:
        drop: Optional[_Drop] = None
        while True:
            opened = state.connect(drop)
            if opened is None:
                return
            updates, update = opened
            try:
                while True:
                    state.record(update)
                    yield update
                    if update.is_terminal:
                        return
                    try:
                        update = next(updates)
                    except StopIteration:
                        state.scope.check()
                        if state.scope.reason == CLOSE:
                            return
                        raise _Drop("stream ended before a terminal status") from None
            except _Drop as exc:
                log.info("stream of task %s dropped after event %s: %s", state.task_id, state.last_event_id, exc)
                drop = exc
            finally:
                state.release()
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        reason = state.scope.reason
        state.scope.close()
        if state.cancel_task_on_abort and state.result is None and (interrupted or reason in (TIMEOUT, CANCEL)):
            state.cancel_on_server()


class TaskStream:
    """The updates of one task, iterable once (``for update in stream``).

    Yields ``TaskUpdate`` objects in event-id order, each exactly once, and
    ends after the terminal one (a failed or cancelled task is not an
    exception here: its last update says so). Raises ``StreamTimeout``,
    ``Cancelled``, ``ConnectionLost`` (reconnects exhausted), ``ProtocolError``
    or ``APIError`` from the loop. Also a context manager; ``close()``,
    leaving the ``with`` block, breaking out of the loop and garbage
    collection all release the HTTP connection at once.
    """

    def __init__(self, state: _StreamState, on_close: Optional[Callable[[], None]] = None) -> None:
        self._state = state
        self._gen: Optional[Generator[TaskUpdate, None, None]] = _run(state)
        self._on_close = on_close

    # -- iteration ------------------------------------------------------

    def __iter__(self) -> TaskStream:
        return self

    def __next__(self) -> TaskUpdate:
        if self._gen is None:
            raise StopIteration
        try:
            return next(self._gen)
        except BaseException:
            self._gen = None
            raise

    # -- what users otherwise collect by hand ----------------------------

    @property
    def task_id(self) -> str:
        """The task's id."""
        return self._state.task_id

    @property
    def status(self) -> Optional[TaskStatus]:
        """The latest status seen, or None before the first update."""
        return self._state.status

    @property
    def progress(self) -> Optional[Progress]:
        """The latest progress seen, or None."""
        return self._state.progress

    @property
    def logs(self) -> list[str]:
        """Every log line seen so far, in order (a copy)."""
        return list(self._state.logs)

    @property
    def result(self) -> Optional[TaskUpdate]:
        """The terminal ``TaskUpdate`` once the stream reached it, else None."""
        return self._state.result

    @property
    def last_event_id(self) -> Optional[int]:
        """The id of the last update delivered (for ``client.tasks.stream(..., last_event_id=)``)."""
        return self._state.last_event_id

    @property
    def duration(self) -> Optional[float]:
        """Seconds (client clock) from the first update received to the terminal one, or None."""
        state = self._state
        if state.first_seen is None or state.last_seen is None:
            return None
        return state.last_seen - state.first_seen

    # -- control ----------------------------------------------------------

    def close(self) -> None:
        """Stop reading and release the connection; the task keeps running on the server.

        Safe from any thread: a read blocked in another thread returns at once
        and that loop ends without an error.
        """
        self._state.scope.fire(CLOSE)
        gen, self._gen = self._gen, None
        if gen is not None:
            try:
                gen.close()
            except ValueError:
                pass  # running in another thread, which the fired scope has already woken
        self._state.scope.close()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()

    def cancel_task(self) -> Task:
        """Ask the server to cancel the task (``POST /tasks/{id}/cancel``); returns the Task.

        Raises ``ConflictError`` when the task had already finished.
        """
        scope = _Abort(timeout=30.0)
        try:
            data = self._state.transport.call(
                "POST", f"/tasks/{quote_id(self.task_id, 'task_id')}/cancel", scope=scope, retry=False
            )
        finally:
            scope.close()
        return Task.from_wire(data)

    def __enter__(self) -> TaskStream:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __del__(self) -> None:
        gen = getattr(self, "_gen", None)
        if gen is not None:
            self._gen = None
            gen.close()
        state = getattr(self, "_state", None)
        if state is not None:
            state.scope.close()

    def __repr__(self) -> str:
        return f"<TaskStream task_id={self.task_id!r} status={self.status} last_event_id={self.last_event_id}>"
