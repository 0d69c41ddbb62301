"""Tasks in memory: creation, idempotency keys, updates, cancellation.

Every change of a task goes through ``Store.update`` (or ``Store.delta`` for
streamed model output), which updates the task, its status history and its
log records, then hands the change to the store's ``Writer``: the dialect's
way to write it on the wire. ``V1Writer`` appends one PROTOCOL.md TaskUpdate
event (already encoded as SSE bytes) to the task's event log; the hosted
writer lives in ``_hosted_wire``. All methods run on the server's event loop.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional, Protocol

from ._events import EventLog
from ._faults import FaultSpec, TaskFaults

RECEIVED, QUEUED, SCHEDULED, PREPARING, SERVING = 1, 2, 3, 4, 5
SETTING_UP, RUNNING, UPLOADING, COMPLETED, FAILED, CANCELLED = 6, 7, 8, 10, 11, 12
STATUS_NAMES = {
    RECEIVED: "received",
    QUEUED: "queued",
    SCHEDULED: "scheduled",
    PREPARING: "preparing",
    SERVING: "serving",
    SETTING_UP: "setting_up",
    RUNNING: "running",
    UPLOADING: "uploading",
    COMPLETED: "completed",
    FAILED: "failed",
    CANCELLED: "cancelled",
}
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
#: Store-internal (not a PROTOCOL.md code): only the hosted dialect's cancel passes through it.
CANCELLING = 100
STATUS_NAMES[CANCELLING] = "cancelling"
#: Log record types (HOSTED.md): lines logged before ``running`` go to "setup", the rest to "task".
LOG_SETUP, LOG_TASK = 3, 4

_UNSET: Any = object()


def now() -> datetime:
    """The current UTC time."""
    return datetime.now(timezone.utc)


def rfc3339(moment: datetime) -> str:
    """``moment`` as RFC 3339 UTC with milliseconds, e.g. ``2025-01-01T12:00:00.000Z``."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_event(event_id: int, payload: dict[str, Any], event: str = "update") -> bytes:
    """One SSE event block: ``id``, ``event`` and one-line JSON ``data``."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n".encode()


@dataclass
class LogRecord:
    """The lines of one log type, as the hosted dialect's TaskDTO lists them."""

    id: str
    log_type: int
    created_at: datetime
    updated_at: datetime
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Change:
    """What one ``Store.update`` changed, for the writer."""

    status: bool
    logs: list[str]
    partial_output: Any = None


class Writer(Protocol):
    """A dialect's way to write a task's changes into its event log."""

    def created(self, task: Task) -> None:
        """The task was just created (status received)."""

    def changed(self, task: Task, change: Change) -> int:
        """The task changed; returns the id of the event written."""

    def delta(self, task: Task, delta: dict[str, Any]) -> None:
        """A piece of streamed output (``response``/``reasoning`` text, ``usage``) arrived."""


class Task:
    """One run of an app, its current state, history and event log."""

    def __init__(
        self,
        app: str,
        input: dict[str, Any],
        setup: Optional[dict[str, Any]],
        faults: TaskFaults,
    ) -> None:
        self.id = "tsk_" + secrets.token_hex(12)
        self.app = app
        self.input = input
        self.setup = setup
        self.faults = faults
        self.status = RECEIVED
        self.output: Any = None
        self.error: Optional[str] = None
        self.logs: list[str] = []
        self.progress: Optional[dict[str, int]] = None
        self.created_at = self.updated_at = now()
        self.events: EventLog[Any] = EventLog()
        #: every status the task went through, with when
        self.history: list[tuple[int, datetime]] = [(RECEIVED, self.created_at)]
        self.records: list[LogRecord] = []
        #: the output streamed so far (``Store.delta``), e.g. {"response": "Hel"}
        self.streamed: dict[str, Any] = {}
        self.deltas = 0
        self.runner: Optional[asyncio.Task[None]] = None

    @property
    def terminal(self) -> bool:
        """True once completed, failed or cancelled."""
        return self.status in TERMINAL

    def to_json(self, status_names: bool = False) -> dict[str, Any]:
        """The PROTOCOL.md Task object."""
        return {
            "id": self.id,
            "app": self.app,
            "status": STATUS_NAMES[self.status] if status_names else self.status,
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "logs": list(self.logs),
            "progress": dict(self.progress) if self.progress is not None else None,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


class Store:
    """All tasks of one server, their idempotency keys and run-fault counters.

    ``faults`` are the server-wide specs armed on every task; ``status_names``
    makes events and task bodies carry status names instead of codes;
    ``writer`` writes each change on the wire (default ``V1Writer``).
    """

    def __init__(
        self,
        *,
        faults: Sequence[FaultSpec] = (),
        status_names: bool = False,
        writer: Optional[Writer] = None,
        dialect: str = "v1",
    ) -> None:
        self.faults = tuple(faults)
        self.status_names = status_names
        self.writer: Writer = writer or V1Writer(status_names)
        #: "v1" or "hosted": the apps word their logs by it, and a hosted cancel passes through cancelling
        self.dialect = dialect
        self.tasks: dict[str, Task] = {}
        self.stopping = False
        self._by_key: dict[str, str] = {}
        self._run_faults: dict[str, TaskFaults] = {}

    def by_idempotency_key(self, key: str) -> Task | None:
        """The task first created with ``key``, if any."""
        task_id = self._by_key.get(key)
        return self.tasks.get(task_id) if task_id is not None else None

    def run_fault(self, body_key: str, specs: Iterable[FaultSpec]) -> FaultSpec | None:
        """A due ``run_status`` fault for the run request whose body is ``body_key``.

        Firings are counted per distinct request body (no task exists yet).
        """
        specs = [spec for spec in (*self.faults, *specs) if spec.kind == "run_status"]
        if not specs:
            return None
        armed = self._run_faults.setdefault(body_key, TaskFaults(specs))
        return armed.fire("run_status")

    def create(
        self,
        app: str,
        input: dict[str, Any],
        setup: Optional[dict[str, Any]] = None,
        faults: Iterable[FaultSpec] = (),
        idempotency_key: Optional[str] = None,
    ) -> Task:
        """Register a new task (status received, event 1) under ``idempotency_key``."""
        task = Task(app, input, setup, TaskFaults((*self.faults, *faults)))
        self.tasks[task.id] = task
        if idempotency_key is not None:
            self._by_key[idempotency_key] = task.id
        self.writer.created(task)
        return task

    def update(
        self,
        task: Task,
        *,
        status: Optional[int] = None,
        progress: Any = _UNSET,
        logs: Iterable[str] = (),
        partial_output: Any = None,
        output: Any = None,
        error: Optional[str] = None,
    ) -> int | None:
        """Apply one change to ``task`` and append its event; returns the event id.

        ``progress`` is ``{"current", "total"}`` or None (left as is when not
        given); ``logs`` are new lines; ``output``/``error`` are stored when
        given. Returns None (and changes nothing) once the task is terminal.
        """
        if task.terminal:
            return None
        moment = now()
        status_changed = status is not None and status != task.status
        if status is not None:
            task.status = status
            if status_changed:
                task.history.append((status, moment))
        if progress is not _UNSET:
            task.progress = dict(progress) if progress is not None else None
        if output is not None:
            task.output = output
        if error is not None:
            task.error = error
        new_logs = list(logs)
        task.logs.extend(new_logs)
        task.updated_at = moment
        if new_logs:
            _record(task, moment).lines.extend(new_logs)
        return self.writer.changed(task, Change(status_changed, new_logs, partial_output))

    def delta(self, task: Task, **pieces: Any) -> None:
        """Stream a piece of output: ``response``/``reasoning`` text (appended), ``usage`` (replaced)."""
        if task.terminal:
            return
        for key, value in pieces.items():
            if isinstance(value, str):
                task.streamed[key] = task.streamed.get(key, "") + value
            else:
                task.streamed[key] = value
        task.deltas += 1
        task.updated_at = now()
        self.writer.delta(task, dict(pieces))

    def cancel(self, task: Task) -> bool:
        """Cancel ``task``: cancelled event now (the hosted dialect: cancelling now, cancelled once the app stopped).

        Returns False (and does nothing) when the task is already terminal.
        """
        if task.terminal:
            return False
        runner = task.runner
        if self.dialect != "hosted" or runner is None or runner.done():
            self.update(task, status=CANCELLED, logs=["Task cancelled"])
            if runner is not None and not runner.done():
                runner.cancel()
            return True
        if task.status == CANCELLING:
            return True
        self.update(task, status=CANCELLING, logs=["Cancelling task"])
        runner.cancel()
        # a runner cancelled before it ever ran never sees CancelledError: end the task here then
        runner.add_done_callback(lambda _: self._cancelled(task))
        return True

    def _cancelled(self, task: Task) -> None:
        if not self.stopping:
            self.update(task, status=CANCELLED, logs=["Task cancelled"])

    def shutdown(self) -> None:
        """Stop every app coroutine and wake every stream so it can end."""
        self.stopping = True
        for task in self.tasks.values():
            if task.runner is not None and not task.runner.done():
                task.runner.cancel()
            task.events.wake()


def _record(task: Task, moment: datetime) -> LogRecord:
    """The log record that lines logged now belong to (created on first use)."""
    log_type = LOG_SETUP if task.status < RUNNING else LOG_TASK
    for record in task.records:
        if record.log_type == log_type:
            record.updated_at = moment
            return record
    record = LogRecord(f"{task.id}-log{log_type}", log_type, moment, moment)
    task.records.append(record)
    return record


class V1Writer:
    """PROTOCOL.md: one TaskUpdate event (SSE bytes) per change; deltas become ``partial_output`` previews."""

    def __init__(self, status_names: bool = False) -> None:
        self.status_names = status_names

    def created(self, task: Task) -> None:
        self._append(task, logs=[], partial_output=None)

    def changed(self, task: Task, change: Change) -> int:
        return self._append(task, logs=change.logs, partial_output=change.partial_output)

    def delta(self, task: Task, delta: dict[str, Any]) -> None:
        self._append(task, logs=[], partial_output=dict(task.streamed))

    def _append(self, task: Task, *, logs: list[str], partial_output: Any) -> int:
        status: int | str = task.status
        if self.status_names:
            status = STATUS_NAMES[task.status]
        payload = {
            "task_id": task.id,
            "status": status,
            "progress": dict(task.progress) if task.progress is not None else None,
            "logs": logs,
            "partial_output": partial_output,
            "output": task.output if task.status == COMPLETED else None,
            "error": task.error if task.status == FAILED else None,
            "timestamp": rfc3339(task.updated_at),
        }
        event_id = task.events.last_id + 1
        task.events.append(encode_event(event_id, payload))
        if task.terminal:
            task.events.close()
        return event_id
