"""Typed, immutable data the SDK hands out: task statuses, updates, tasks, agent events.

Every class is a frozen, slotted attrs class; wire values are converted at the
edge (``TaskStatus.from_wire``, ``Progress.from_wire``), so user code never
sees raw JSON shapes. Field meanings follow PROTOCOL.md ("Task" and
"Task event stream").
"""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Any, Literal, Optional, Union

import attrs

from ._agent_events import Done, Message, Reply, ToolCall
from ._errors import ProtocolError, TaskCancelled, TaskFailed, TaskRejected
from ._wire import _error_text, _excerpt, _is_number, _logs, _optional_str, log_record_lines

__all__ = [
    "Done",
    "Message",
    "Progress",
    "Reply",
    "Task",
    "TaskStatus",
    "TaskUpdate",
    "ToolCall",
]


class TaskStatus(str, enum.Enum):
    """A task's status: a ``str`` enum, so ``status == "running"`` works.

    ``.code`` is the integer wire code of PROTOCOL.md (``RUNNING.code == 7``),
    None for the statuses PROTOCOL.md has no code for (``CANCELLING``,
    ``REJECTED``, ``UNKNOWN``). ``DISPATCHED`` is the hosted service's name of
    ``SCHEDULED`` (the same member). ``UNKNOWN`` stands for any code or name
    the SDK does not know, which is not an error. Integer codes are read with
    the table of the dialect that sent them (``from_wire(value, dialect)``):
    PROTOCOL.md's, or the hosted service's (HOSTED.md "Status numbers": 8
    cancelling, 9 uploading, 13 rejected, 0 unknown).
    """

    RECEIVED = "received"
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    DISPATCHED = "scheduled"  # the hosted name of the same status: an alias, not a second member
    PREPARING = "preparing"
    SERVING = "serving"
    SETTING_UP = "setting_up"
    RUNNING = "running"
    CANCELLING = "cancelling"
    UPLOADING = "uploading"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def code(self) -> Optional[int]:
        """The integer wire code of PROTOCOL.md (1–12), or None where it has none."""
        return _CODE_BY_STATUS.get(self)

    @property
    def is_terminal(self) -> bool:
        """True for completed, failed, cancelled and rejected."""
        return self in _TERMINAL

    @classmethod
    def from_wire(cls, value: Union[int, str, TaskStatus, None], dialect: str = "v1") -> TaskStatus:
        """Map a wire value to a status; unknown → ``UNKNOWN``.

        ``value`` is an int code (read with PROTOCOL.md's table, or the hosted
        table when ``dialect == "hosted"``) or a name of either dialect,
        any case (``"dispatched"`` and ``"canceled"`` included).
        """
        if isinstance(value, TaskStatus):
            return value
        if isinstance(value, bool):
            return cls.UNKNOWN
        if isinstance(value, int):
            table = _HOSTED_STATUS_BY_CODE if dialect == "hosted" else _STATUS_BY_CODE
            return table.get(value, cls.UNKNOWN)
        if isinstance(value, str):
            return _STATUS_BY_NAME.get(value.strip().lower(), cls.UNKNOWN)
        return cls.UNKNOWN


_CODE_BY_STATUS = {
    TaskStatus.RECEIVED: 1,
    TaskStatus.QUEUED: 2,
    TaskStatus.SCHEDULED: 3,
    TaskStatus.PREPARING: 4,
    TaskStatus.SERVING: 5,
    TaskStatus.SETTING_UP: 6,
    TaskStatus.RUNNING: 7,
    TaskStatus.UPLOADING: 8,
    TaskStatus.COMPLETED: 10,
    TaskStatus.FAILED: 11,
    TaskStatus.CANCELLED: 12,
}
_STATUS_BY_CODE = {code: status for status, code in _CODE_BY_STATUS.items()}
# HOSTED.md "Status numbers" (the current hosted numbering).
_HOSTED_STATUS_BY_CODE = {
    0: TaskStatus.UNKNOWN,
    1: TaskStatus.RECEIVED,
    2: TaskStatus.QUEUED,
    3: TaskStatus.SCHEDULED,
    4: TaskStatus.PREPARING,
    5: TaskStatus.SERVING,
    6: TaskStatus.SETTING_UP,
    7: TaskStatus.RUNNING,
    8: TaskStatus.CANCELLING,
    9: TaskStatus.UPLOADING,
    10: TaskStatus.COMPLETED,
    11: TaskStatus.FAILED,
    12: TaskStatus.CANCELLED,
    13: TaskStatus.REJECTED,
}
_STATUS_BY_NAME = {status.value: status for status in TaskStatus if status is not TaskStatus.UNKNOWN}
# HOSTED.md's names, and the American spellings the hosted chats API uses ("canceled").
_STATUS_BY_NAME.update(
    {"dispatched": TaskStatus.SCHEDULED, "canceled": TaskStatus.CANCELLED, "canceling": TaskStatus.CANCELLING}
)
_TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.REJECTED})


@attrs.frozen
class Progress:
    """Progress of a running task: ``current`` of ``total`` steps."""

    current: int
    total: int

    @property
    def fraction(self) -> float:
        """``current / total`` clamped to 0.0–1.0 (0.0 when ``total`` is not positive)."""
        if self.total <= 0:
            return 0.0
        return min(1.0, max(0.0, self.current / self.total))

    def to_wire(self) -> dict[str, int]:
        """``{"current": int, "total": int}``, the wire shape."""
        return {"current": self.current, "total": self.total}

    @classmethod
    def from_wire(cls, value: Any) -> Optional[Progress]:
        """``{"current": int, "total": int}`` → ``Progress``; None → None.

        Raises ``ProtocolError`` for any other shape.
        """
        if value is None or isinstance(value, Progress):
            return value
        if isinstance(value, dict):
            current: Any = value.get("current")
            total: Any = value.get("total")
            if _is_number(current) and _is_number(total):
                return cls(int(current), int(total))
        raise ProtocolError(f"progress is not {{current, total}}: {_excerpt(value)}")


def _progress(value: Any) -> Optional[Progress]:
    """``Progress.from_wire``, with a fast path for two plain ints."""
    if type(value) is dict:
        current = value.get("current")
        total = value.get("total")
        if type(current) is int and type(total) is int:
            return Progress(current, total)
    return Progress.from_wire(value)


@attrs.frozen
class TaskUpdate:
    """One update of a task stream (PROTOCOL.md "Task event stream", or the hosted stream of HOSTED.md).

    ``event_id`` is the stream's ``id:`` (on hosted streams, which have no
    ids, the update's number in the stream: 1, 2, 3, ...); ``logs`` holds only
    the lines new in this update; ``partial_output`` a preview of the output
    (hosted: the output accumulated from ``delta`` events); ``output`` is set
    on completed, ``error`` on failed (and rejected).
    """

    task_id: str
    event_id: int
    status: TaskStatus
    progress: Optional[Progress] = None
    logs: tuple[str, ...] = ()
    # JSON values (dicts, lists) are compared but not hashed, so every update is hashable.
    partial_output: Any = attrs.field(default=None, hash=False)
    output: Any = attrs.field(default=None, hash=False)
    error: Optional[str] = None
    timestamp: Optional[str] = None

    @property
    def is_terminal(self) -> bool:
        """True when the status is completed, failed or cancelled."""
        return self.status.is_terminal

    def to_wire(self) -> dict[str, Any]:
        """The TaskUpdate JSON object of PROTOCOL.md, with ``status`` as its lowercase name."""
        return {
            "task_id": self.task_id,
            "status": self.status.value,
            "progress": None if self.progress is None else self.progress.to_wire(),
            "logs": list(self.logs),
            "partial_output": self.partial_output,
            "output": self.output,
            "error": self.error,
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_wire(cls, event_id: int, data: Any) -> TaskUpdate:
        """Build an update from a decoded TaskUpdate JSON object.

        Raises ``ProtocolError`` when ``data`` is not an object of that shape.
        """
        if not isinstance(data, dict):
            raise ProtocolError(f"update is not a JSON object: {_excerpt(data)}", event_id=str(event_id))
        get = data.get
        task_id = get("task_id")
        if not isinstance(task_id, str):
            raise ProtocolError("update has no task_id string", event_id=str(event_id))
        # Exact-type fast paths for what json.loads gives for a conforming update (this runs once per
        # event, so it is the SDK's hot path); anything else takes the general converters, same result.
        status = get("status")
        progress = get("progress")
        logs = get("logs")
        error = get("error")
        timestamp = get("timestamp")
        try:
            return cls(
                task_id,
                event_id,
                (
                    _STATUS_BY_CODE.get(status, TaskStatus.UNKNOWN)
                    if type(status) is int
                    else TaskStatus.from_wire(status)
                ),
                _progress(progress),
                _logs(logs),
                get("partial_output"),
                get("output"),
                error if error is None or type(error) is str else _optional_str(error, "error"),
                timestamp if timestamp is None or type(timestamp) is str else _optional_str(timestamp, "timestamp"),
            )
        except ProtocolError as exc:
            raise ProtocolError(str(exc), event_id=str(event_id)) from None


@attrs.frozen
class Task:
    """A task as ``GET /tasks/{id}`` returns it (PROTOCOL.md "Task").

    ``output`` returns the output, and raises ``TaskFailed`` when the task
    failed, ``TaskRejected`` (a ``TaskFailed``) when the hosted service
    refused it, or ``TaskCancelled`` when it was cancelled; ``raw_output``
    never raises. A hosted TaskDTO (HOSTED.md) is read into the same class:
    its log records become ``logs`` lines.
    """

    id: str
    app: str
    status: TaskStatus
    input: Any = attrs.field(default=None, hash=False)
    raw_output: Any = attrs.field(default=None, hash=False)
    error: Optional[str] = None
    logs: tuple[str, ...] = ()
    progress: Optional[Progress] = None
    created_at: Optional[str] = None
    updated_at: Optional[str] = None

    @property
    def output(self) -> Any:
        """The task's output; raises ``TaskFailed`` / ``TaskRejected`` / ``TaskCancelled`` for those outcomes."""
        if self.status is TaskStatus.FAILED:
            raise TaskFailed(self.id, self.error)
        if self.status is TaskStatus.REJECTED:
            raise TaskRejected(self.id, self.error)
        if self.status is TaskStatus.CANCELLED:
            raise TaskCancelled(self.id)
        return self.raw_output

    @property
    def is_terminal(self) -> bool:
        """True when the status is completed, failed or cancelled."""
        return self.status.is_terminal

    def raise_for_status(self) -> Task:
        """Return the task if it did not fail, get rejected or cancelled; else raise as ``output`` does."""
        self.output  # noqa: B018 - the property raises for failed and cancelled tasks
        return self

    def save_outputs(
        self, directory: Union[str, os.PathLike[str]], *, progress: Union[bool, Literal["always"]] = False
    ) -> dict[str, Path]:
        """Download every http(s) file URL of the output (nested included) into ``directory``.

        Returns ``{key: path}`` (``"image"``, ``"images[1]"``...); see
        ``inferencesh.save_outputs``. Raises as ``output`` does for a failed,
        rejected or cancelled task, ``UsageError`` for a name that would leave
        the directory, ``DownloadError`` when a file cannot be fetched.
        """
        from .files import save_outputs

        return save_outputs(self.output, directory, progress=progress)

    def to_wire(self) -> dict[str, Any]:
        """The Task JSON object of PROTOCOL.md, with ``status`` as its lowercase name."""
        return {
            "id": self.id,
            "app": self.app,
            "status": self.status.value,
            "input": self.input,
            "output": self.raw_output,
            "error": self.error,
            "logs": list(self.logs),
            "progress": None if self.progress is None else self.progress.to_wire(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_wire(cls, data: Any, dialect: str = "v1") -> Task:
        """Build a task from a decoded Task JSON object (PROTOCOL.md), or a TaskDTO when ``dialect == "hosted"``.

        Raises ``ProtocolError`` on another shape.
        """
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise ProtocolError(f"task is not a JSON object with an id: {_excerpt(data)}")
        app = data.get("app")
        if not isinstance(app, str):
            app = data.get("app_id")
        hosted = dialect == "hosted"
        logs = data.get("logs")
        return cls(
            data["id"],
            app if isinstance(app, str) else "",
            TaskStatus.from_wire(data.get("status"), dialect),
            data.get("input"),
            data.get("output"),
            _error_text(data.get("error")) if hosted else _optional_str(data.get("error"), "error"),
            log_record_lines(logs) if hosted else _logs(logs),
            None if hosted else Progress.from_wire(data.get("progress")),
            _optional_str(data.get("created_at"), "created_at"),
            _optional_str(data.get("updated_at"), "updated_at"),
        )
