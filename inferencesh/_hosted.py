"""The hosted service's task dialect (HOSTED.md), turned into the same ``TaskUpdate`` as PROTOCOL.md.

The hosted task stream has no ids and no replay: it sends a whole TaskDTO,
then partial updates ``{"data": {...}, "fields": [...]}``, ``delta`` events of
language-model output, and heartbeats, and may close at any moment. A
``HostedTaskReader`` keeps, for one stream:

* the task known so far (partial updates merged into it, top-level fields
  replaced, as the official JavaScript SDK does);
* the statuses handed out, matched against the task's ``events`` history;
* a cursor per log record (by ``id``, in characters), so a record whose
  ``content`` grows hands out each new line once; an unfinished last line
  waits for its line end, or for the task's end;
* the ``delta`` accumulator (``response`` and ``reasoning`` concatenate,
  ``tool_calls`` merge by ``index``, ``usage`` and other fields replace).

It hands out a ``TaskUpdate`` only when something is new: a status (one
update per status, in history order), log lines, a delta. After a drop, and
when only heartbeats came for ``reconcile_interval`` seconds, ``recover()``
reads ``GET /tasks/{id}`` and hands out exactly what the history holds that
was not handed out; a snapshot the server repeats after a reconnect adds
nothing. ``event_id`` counts the updates of the stream (1, 2, 3, ...).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any, Callable, Optional

from ._answers import envelope
from ._dialects import HOSTED_TASK_EVENTS, sse_objects
from ._errors import ProtocolError
from ._hosted_deltas import DeltaAccumulator
from ._sse import ServerSentEvent
from ._transport import Transport
from ._watchdog import _Abort
from ._wire import _error_text
from .models import Progress, TaskStatus, TaskUpdate

__all__ = ["DeltaAccumulator", "HostedTaskReader", "looks_hosted", "tqdm_progress"]

# tqdm's default bar: " 42%|████▏     | 21/50 [00:01<00:01, 20.1it/s]" (HOSTED.md: progress is only in logs).
_TQDM = re.compile(r"(\d{1,3})%\|[^|\n]*\|\s*(\d+)/(\d+)")
_LINE_END = re.compile(r"\r\n|\r|\n")
# Keys that only a hosted Task / TaskDTO has (PROTOCOL.md's Task has "app", "logs" of strings, "progress").
_HOSTED_KEYS = ("short_id", "status_text", "session_id", "app_id", "events")


def looks_hosted(task: Any) -> Optional[bool]:
    """Whether a task object is a hosted TaskDTO (True), a PROTOCOL.md Task (False), or cannot tell (None)."""
    if not isinstance(task, dict):
        return None
    if any(key in task for key in _HOSTED_KEYS):
        return True
    logs = task.get("logs")
    if isinstance(logs, list) and logs:
        return isinstance(logs[0], dict)
    if "progress" in task or isinstance(task.get("app"), str):
        return False
    return None


def tqdm_progress(line: str) -> Optional[Progress]:
    """``Progress`` from a tqdm-style line (``42%|████ | 21/50 [...]``), else None."""
    match = _TQDM.search(line)
    if match is None:
        return None
    return Progress(int(match.group(2)), int(match.group(3)))


class _LogCursor:
    """What was handed out of each log record: characters consumed, by record id.

    Only the last record listed may still be growing: an unfinished line of any
    other record (one that a later record follows, or one that the list no
    longer holds: a server that sends only new records) is complete.
    """

    def __init__(self) -> None:
        self.consumed: dict[Any, int] = {}
        self.pending: dict[Any, str] = {}  # the unfinished last line of a record, by record id

    def new_lines(self, records: Any, flush: bool) -> list[str]:
        """The complete lines added to ``records`` since the last call; with ``flush`` the unfinished ones too."""
        if not isinstance(records, list):
            return []
        entries: list[tuple[Any, str]] = []
        for position, record in enumerate(records):
            if isinstance(record, dict):
                key, content = record.get("id", position), record.get("content")
            else:
                key, content = position, record
            if isinstance(content, str):
                entries.append((key if isinstance(key, (str, int)) else position, content))
        lines: list[str] = []
        listed = {key for key, _ in entries}
        for key in [key for key in self.pending if key not in listed]:  # gone from the list: complete
            tail = self.pending.pop(key)
            lines.append(tail.rstrip("\r"))
            self.consumed[key] = self.consumed.get(key, 0) + len(tail)
        last = len(entries) - 1
        for number, (key, content) in enumerate(entries):
            lines.extend(self._take(key, content, flush or number < last))
        return lines

    def _take(self, key: Any, content: str, complete: bool) -> list[str]:
        start = self.consumed.get(key, 0)
        if len(content) <= start:
            return []
        text = content[start:]
        # A CR at the very end may be the first half of a CRLF: it waits for what follows.
        body = text[:-1] if text.endswith("\r") and not complete else text
        parts = _LINE_END.split(body)
        tail = parts.pop()  # after the last line end: an unfinished line (or "")
        if complete:
            if tail:
                parts.append(tail)
            self.consumed[key] = len(content)
            self.pending.pop(key, None)
        else:
            self.consumed[key] = start + len(body) - len(tail)
            if text[len(body) - len(tail) :]:
                self.pending[key] = text[len(body) - len(tail) :]
            else:
                self.pending.pop(key, None)
        return parts


def _history(task: dict[str, Any], current: TaskStatus) -> list[TaskStatus]:
    """The statuses the task went through, in order, consecutive repeats folded, with ``current`` last
    unless the history already holds it (its ``events`` may be ahead of a stale ``status``)."""
    statuses: list[TaskStatus] = []
    events = task.get("events")
    if isinstance(events, list):
        for event in events:
            if isinstance(event, dict) and "status" in event:
                status = TaskStatus.from_wire(event["status"], "hosted")
                if not statuses or statuses[-1] is not status:
                    statuses.append(status)
    if current not in statuses:  # events may lag behind the status field (never ahead of it: see below)
        statuses.append(current)
    return statuses


def _new_statuses(handed: list[TaskStatus], history: list[TaskStatus]) -> list[TaskStatus]:
    """The statuses of ``history`` after the last one of ``handed`` (matched as a subsequence, in order)."""
    position = 0
    for status in handed:
        try:
            position = history.index(status, position) + 1
        except ValueError:  # the history does not hold what was handed out: only the current status is news
            return [] if history[-1] is handed[-1] else [history[-1]]
    return history[position:]


class HostedTaskReader:
    """One hosted task stream's state (see the module docstring).

    ``task_path`` is ``/tasks/{quoted id}``; ``scope`` is the stream's abort
    scope (for ``GET`` during ``recover``); ``reconcile_interval`` is in
    seconds; ``heard()`` is told of every object a connection brings.
    """

    uses_ids = False

    def __init__(
        self,
        transport: Transport,
        task_id: str,
        task_path: str,
        scope: _Abort,
        *,
        reconcile_interval: float,
        heard: Callable[[], None],
    ) -> None:
        self.transport = transport
        self.task_id = task_id
        self.task_path = task_path
        self.scope = scope
        self.reconcile_interval = reconcile_interval
        self.heard = heard
        self.task: dict[str, Any] = {}
        self.handed: list[TaskStatus] = []
        self.logs = _LogCursor()
        self.deltas = DeltaAccumulator()
        self.progress: Optional[Progress] = None
        self.count = 0
        self.last_news = time.monotonic()

    # -- frames -----------------------------------------------------------

    def from_sse(self, events: Iterator[ServerSentEvent]) -> Iterator[TaskUpdate]:
        return self.from_ndjson(sse_objects(events, HOSTED_TASK_EVENTS))

    def from_ndjson(self, batches: Iterator[list[dict[str, Any]]]) -> Iterator[TaskUpdate]:
        """Updates from the stream's objects, read in batches (the objects one read brought).

        Deltas that arrive together make one update: its ``partial_output`` holds them all, so
        a burst of tiny deltas costs one copy of the text, not one per delta.
        """
        self.last_news = time.monotonic()
        heard = self.heard
        for batch in batches:
            deltas = False
            for obj in batch:
                heard()
                if "type" in obj and "id" not in obj:
                    continue  # a heartbeat (or another keep-alive): no news, the reconcile clock runs on
                data = obj.get("data")
                if obj.get("event") == "delta" and isinstance(data, dict):
                    self.last_news = time.monotonic()
                    self.deltas.add(data.get("delta"))
                    deltas = True
                    continue
                if deltas:
                    yield from self._delta_update()
                    deltas = False
                updates = self.take(obj)
                if updates or self._is_task(obj):
                    self.last_news = time.monotonic()
                yield from updates
            if deltas:
                yield from self._delta_update()

    def take(self, obj: dict[str, Any]) -> list[TaskUpdate]:
        """The updates one stream object brings (none when it holds nothing new)."""
        event = obj.get("event")
        data = obj.get("data")
        if event == "delta":
            if isinstance(data, dict):
                self.deltas.add(data.get("delta"))
                return self._delta_update()
            return []
        if event is not None and event not in ("message", "update", "task", "tasks"):
            return []  # typed events a task stream does not use
        if isinstance(data, dict) and ("fields" in obj or "id" not in obj):
            self.task.update(data)  # a partial update: its fields replace the task's
            return self.sync(data)
        if "id" in obj or "status" in obj:
            self.task.update(obj)  # a whole TaskDTO
            return self.sync()
        return []

    def _delta_update(self) -> list[TaskUpdate]:
        """The update for the deltas just added; none before the task's status is known (the next update
        carries them)."""
        status = self.handed[-1] if self.handed else self._status()
        return [] if status is TaskStatus.UNKNOWN else [self._update(status, (), False)]

    @staticmethod
    def _is_task(obj: dict[str, Any]) -> bool:
        return isinstance(obj.get("data"), dict) or "id" in obj or "status" in obj

    def recover(self) -> list[TaskUpdate]:
        """After a drop: read ``GET /tasks/{id}`` and hand out what its history holds that was not handed out."""
        response = self.transport.send("GET", self.task_path, scope=self.scope)
        data, _ = envelope(response)
        if not isinstance(data, dict):
            raise ProtocolError(f"GET {self.task_path} answered no task object")
        return self.recover_from(data)

    def recover_from(self, data: dict[str, Any]) -> list[TaskUpdate]:
        """What a task read by ``GET /tasks/{id}`` holds that was not handed out (see ``recover``)."""
        self.last_news = time.monotonic()
        self.task.update(data)
        updates = self.sync()
        if not updates and self._status().is_terminal:  # the end is owed even if nothing else is new
            updates.append(self._update(self._status(), (), True))
        return updates

    def probe(self) -> Optional[list[TaskUpdate]]:
        """``recover`` for a stream whose dialect is not known yet: None if the task is PROTOCOL.md's."""
        data, hint = envelope(self.transport.send("GET", self.task_path, scope=self.scope))
        if hint != "hosted" and not looks_hosted(data):
            return None
        if not isinstance(data, dict):
            raise ProtocolError(f"GET {self.task_path} answered no task object")
        return self.recover_from(data)

    def stale(self) -> bool:
        return time.monotonic() - self.last_news > self.reconcile_interval

    # -- what is new --------------------------------------------------------

    def _status(self) -> TaskStatus:
        return TaskStatus.from_wire(self.task.get("status"), "hosted")

    def sync(self, changed: Optional[dict[str, Any]] = None) -> list[TaskUpdate]:
        """Updates for what the merged task holds that was not handed out: statuses in order, log lines.

        ``changed`` is a partial update's data: history and logs are only walked again when it
        touches them (None: anything may have changed).
        """
        current = self._status()
        if changed is None or "events" in changed or not self.handed or current is not self.handed[-1]:
            statuses = _new_statuses(self.handed, _history(self.task, current))
        else:
            statuses = []
        if changed is None or "logs" in changed or current.is_terminal:
            lines = self.logs.new_lines(self.task.get("logs"), flush=current.is_terminal)
        else:
            lines = []
        if not statuses and not lines:
            return []
        if not statuses:
            return [self._update(current, tuple(lines), False)]
        # Log lines go with the last status reached while running (they were written before the end).
        carrier = len(statuses) - 1
        if statuses[-1].is_terminal and len(statuses) > 1:
            carrier -= 1
        updates = []
        for position, status in enumerate(statuses):
            self.handed.append(status)
            mine = tuple(lines) if position == carrier else ()
            updates.append(self._update(status, mine, status.is_terminal))
        return updates

    def _update(self, status: TaskStatus, lines: tuple[str, ...], terminal: bool) -> TaskUpdate:
        for line in lines:
            progress = tqdm_progress(line) if "%|" in line else None
            if progress is not None:
                self.progress = progress
        task = self.task
        self.count += 1
        output = task.get("output") if terminal and status is TaskStatus.COMPLETED else None
        error = _error_text(task.get("error")) if terminal and status is not TaskStatus.COMPLETED else None
        updated = task.get("updated_at")
        return TaskUpdate(
            self.task_id,
            self.count,
            status,
            self.progress,
            lines,
            self.deltas.snapshot(),
            output,
            error,
            updated if isinstance(updated, str) else None,
        )
