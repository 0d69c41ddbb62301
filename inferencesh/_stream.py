"""``TaskStream``: a task's updates as a plain iterator, resumed after any drop.

Reading, reconnecting and deduplicating live in ``_resume``; this module turns
events into ``TaskUpdate`` objects and keeps what users otherwise collect by
hand (status, progress, logs, result, duration).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Callable, Optional

from ._dialects import V1Reader, pick
from ._errors import ConflictError, ProtocolError, UsageError
from ._hosted import HostedTaskReader, looks_hosted
from ._iterator import FeedIterator, once
from ._resume import Feed, follow
from ._sse import ServerSentEvent
from ._transport import Transport, quote_id
from ._watchdog import _Abort
from .models import Progress, Task, TaskStatus, TaskUpdate

if TYPE_CHECKING:
    pass

log = logging.getLogger("inferencesh")

_UPDATE_TYPES = frozenset({"update", "message"})


def parse_update(event: ServerSentEvent, number: int) -> Optional[TaskUpdate]:
    """An ``update`` (or unnamed) event → ``TaskUpdate``; other event types → None (ignored).

    Raises ``ProtocolError`` when the data is not a TaskUpdate JSON object.
    """
    if event.event not in _UPDATE_TYPES:
        return None
    try:
        data = _loads(event.data)
    except (ValueError, RecursionError):
        raise ProtocolError("event data is not JSON (or nested too deeply)", event_id=event.id) from None
    return TaskUpdate.from_wire(number, data)


_raw_decode = json.JSONDecoder().raw_decode


def _loads(text: str) -> Any:
    """``json.loads(text)``: the same value or the same error, a microsecond sooner per event.

    When the whole text is one JSON value (what a conforming server sends) the
    decoder's ``raw_decode`` gives the value json.loads would give; any other
    text (leading or trailing whitespace, garbage, a BOM) goes to json.loads itself.
    """
    try:
        value, end = _raw_decode(text)
    except ValueError:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


class _Record:
    """What a task stream has seen so far."""

    def __init__(self) -> None:
        self.status: Optional[TaskStatus] = None
        self.progress: Optional[Progress] = None
        self.logs: list[str] = []
        self.result: Optional[TaskUpdate] = None
        self.first_seen: Optional[float] = None
        self.last_seen: Optional[float] = None
        self.final_task: Optional[Task] = None

    def add(self, update: TaskUpdate) -> None:
        if self.first_seen is None:
            self.first_seen = time.monotonic()
        self.status = update.status
        if update.progress is not None:
            self.progress = update.progress
        if update.logs:
            self.logs.extend(update.logs)
        if update.is_terminal:
            self.result = update
            self.last_seen = time.monotonic()


def open_task_stream(
    transport: Transport,
    task_id: str,
    scope: _Abort,
    *,
    last_event_id: Optional[int],
    max_reconnects: int,
    idle_timeout: float,
    max_event_bytes: int,
    cancel_task_on_abort: bool,
    dialect: Optional[str] = None,
    accept: str = "text/event-stream",
    reconcile_interval: float = 30.0,
) -> TaskStream:
    """Build the ``TaskStream`` of ``task_id`` (nothing is sent until it is iterated).

    ``dialect`` is "v1", "hosted", or None/"auto" (the first frame decides).
    """
    record = _Record()
    task_path = f"/tasks/{quote_id(task_id, 'task_id')}"

    def finished() -> bool:
        # PROTOCOL.md: a resumed stream that closes empty may mean the task is already over.
        task = read_task(transport.call_answer("GET", task_path, scope=scope), dialect or "auto")[0]
        if task.is_terminal:
            record.final_task = task
            record.status = task.status
        return task.is_terminal

    def cancel_on_server() -> None:
        _cancel_quietly(transport, task_id)

    feed: Feed[TaskUpdate] = Feed(
        transport,
        f"{task_path}/stream",
        scope,
        is_terminal=lambda update: update.is_terminal,
        finished=finished,
        last_event_id=last_event_id,
        max_reconnects=max_reconnects,
        idle_timeout=idle_timeout,
        max_event_bytes=max_event_bytes,
        accept=accept,
    )
    feed.reader = pick(
        dialect,
        lambda: V1Reader(parse_update, _UPDATE_TYPES, lambda: feed.last_event_id, feed.hear),
        lambda: HostedTaskReader(
            transport, task_id, task_path, scope, reconcile_interval=reconcile_interval, heard=feed.hear
        ),
    )
    on_abort = once(cancel_on_server) if cancel_task_on_abort else None
    stream = TaskStream(task_id, feed, record, follow(feed, on_abort), on_abort)
    stream._dialect = dialect or "auto"
    return stream


def _cancel_quietly(transport: Transport, task_id: str) -> None:
    """Best effort ``POST /tasks/{id}/cancel`` after an abort, with its own 10 s deadline."""
    try:
        transport.call_within(10.0, "POST", f"/tasks/{quote_id(task_id, 'task_id')}/cancel", retry=False)
        log.info("cancelled task %s on the server", task_id)
    except ConflictError:
        log.debug("task %s had already finished; nothing to cancel", task_id)
    except Exception as exc:  # the caller is already handling the abort's own error
        log.warning("could not cancel task %s on the server: %s", task_id, exc)


def cancel_task(transport: Transport, task_id: str, *, timeout: float, dialect: str = "auto") -> Task:
    """``POST /tasks/{id}/cancel`` → the ``Task``, retried per PROTOCOL.md.

    ``ConflictError`` when the task had already finished; a 409 on a retry
    means the first attempt cancelled it, so the task is fetched instead.
    """
    path = f"/tasks/{quote_id(task_id, 'task_id')}"
    answer = transport.answer_within(
        timeout, "POST", f"{path}/cancel", retried_conflict=lambda: transport.call_within(timeout, "GET", path)
    )
    if answer[0] is None:  # HOSTED.md: cancel may answer an empty body
        answer = transport.answer_within(timeout, "GET", path)
    return read_task(answer, dialect)[0]


def read_task(answer: tuple[Any, Optional[str]], dialect: str) -> tuple[Task, Optional[str]]:
    """A ``Task`` from an answer's (payload, envelope dialect), and the dialect it was read in.

    ``dialect`` is the client's setting; with "auto" the envelope, then the
    task's own shape decide (None: could not tell; read as PROTOCOL.md).
    """
    data, hint = answer
    chosen: Optional[str] = dialect
    if dialect == "auto":
        chosen = hint
        if chosen is None:
            shape = looks_hosted(data)
            chosen = None if shape is None else ("hosted" if shape else "v1")
    return Task.from_wire(data, chosen or "v1"), chosen


class TaskStream(FeedIterator[TaskUpdate]):
    """The updates of one task, iterable once (``for update in stream``).

    Yields ``TaskUpdate`` objects in event-id order, each exactly once, and
    ends after the terminal one (a failed or cancelled task is not an
    exception here: its last update says so). Raises ``StreamTimeout``,
    ``Cancelled``, ``ConnectionLost`` (reconnects exhausted), ``ProtocolError``
    or ``APIError`` from the loop. Also a context manager; ``close()``,
    leaving the ``with`` block, breaking out of a ``for`` over
    ``client.run(...)`` and garbage collection all release the HTTP
    connection at once.
    """

    def __init__(
        self,
        task_id: str,
        feed: Feed[TaskUpdate],
        record: _Record,
        gen: Generator[TaskUpdate, None, None],
        on_abort: Optional[Callable[[], None]] = None,
    ) -> None:
        super().__init__(feed, gen, on_abort)
        self._task_id = task_id
        self._record = record
        self._dialect = "auto"

    def _seen(self, item: TaskUpdate) -> None:
        self._record.add(item)

    # -- what users otherwise collect by hand ----------------------------

    @property
    def task_id(self) -> str:
        """The task's id."""
        return self._task_id

    @property
    def status(self) -> Optional[TaskStatus]:
        """The latest status seen, or None before the first update."""
        return self._record.status

    @property
    def progress(self) -> Optional[Progress]:
        """The latest progress seen, or None."""
        return self._record.progress

    @property
    def logs(self) -> list[str]:
        """Every log line seen so far, in order (a copy)."""
        return list(self._record.logs)

    @property
    def result(self) -> Optional[TaskUpdate]:
        """The terminal ``TaskUpdate`` once the stream reached it, else None."""
        return self._record.result

    @property
    def duration(self) -> Optional[float]:
        """Seconds (client clock) from the first update received to the terminal one, or None."""
        record = self._record
        if record.first_seen is None or record.last_seen is None:
            return None
        return record.last_seen - record.first_seen

    @property
    def final_task(self) -> Optional[Task]:
        """The ``Task`` fetched when a resumed stream found the task already finished, else None."""
        return self._record.final_task

    def raise_for_status(self) -> TaskStream:
        """Return the stream if its task completed; else raise what says how it ended.

        ``TaskFailed`` / ``TaskRejected`` / ``TaskCancelled`` when the task ended
        so; ``UsageError`` when the stream has not reached a terminal status
        (still being read, closed, or left by ``break``).
        """
        result = self._record.result
        if result is not None:
            status, output, error = result.status, result.output, result.error
        elif self._record.final_task is not None:
            task = self._record.final_task
            status, output, error = task.status, task.raw_output, task.error
        else:
            seen = self._record.status
            where = f"the last status seen is {seen.value}" if seen is not None else "no update was seen"
            raise UsageError(f"the stream of task {self._task_id} has not reached a terminal status ({where})")
        Task(self._task_id, "", status, raw_output=output, error=error).raise_for_status()
        return self

    # -- control ----------------------------------------------------------

    def cancel_task(self) -> Task:
        """Ask the server to cancel the task (``POST /tasks/{id}/cancel``); returns the Task.

        Raises ``ConflictError`` when the task had already finished.
        """
        return cancel_task(self._feed.transport, self._task_id, timeout=30.0, dialect=self._dialect)

    def __repr__(self) -> str:
        return f"<TaskStream task_id={self._task_id!r} status={self.status} last_event_id={self.last_event_id}>"
