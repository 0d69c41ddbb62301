"""Tasks in memory: creation, idempotency keys, updates, cancellation.

Every change of a task goes through ``Store.update``, which updates the task
and appends one TaskUpdate event (already encoded as SSE bytes) to the task's
event log. All methods run on the server's event loop.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, Optional

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


class Task:
    """One run of an app, its current state and its event log."""

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
        self.events: EventLog[bytes] = EventLog()
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
    makes events and task bodies carry status names instead of codes.
    """

    def __init__(self, *, faults: Sequence[FaultSpec] = (), status_names: bool = False) -> None:
        self.faults = tuple(faults)
        self.status_names = status_names
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
        self._append(task, logs=[], partial_output=None)
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
        if status is not None:
            task.status = status
        if progress is not _UNSET:
            task.progress = dict(progress) if progress is not None else None
        if output is not None:
            task.output = output
        if error is not None:
            task.error = error
        new_logs = list(logs)
        task.logs.extend(new_logs)
        task.updated_at = now()
        return self._append(task, logs=new_logs, partial_output=partial_output)

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

    def cancel(self, task: Task) -> bool:
        """Cancel ``task``: cancelled event now, app coroutine stopped.

        Returns False (and does nothing) when the task is already terminal.
        """
        if task.terminal:
            return False
        self.update(task, status=CANCELLED, logs=["Task cancelled"])
        if task.runner is not None and not task.runner.done():
            task.runner.cancel()
        return True

    def shutdown(self) -> None:
        """Stop every app coroutine and wake every stream so it can end."""
        self.stopping = True
        for task in self.tasks.values():
            if task.runner is not None and not task.runner.done():
                task.runner.cancel()
            task.events.wake()
