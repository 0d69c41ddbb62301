"""``inferencesh.models``: statuses, progress, updates and tasks built from wire values."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferencesh.models import (
    Done,
    Message,
    Progress,
    Reply,
    Task,
    TaskStatus,
    TaskUpdate,
    ToolCall,
)

try:
    from inferencesh import ProtocolError, TaskCancelled, TaskFailed
except ImportError:  # the package does not export them yet
    from inferencesh._errors import ProtocolError, TaskCancelled, TaskFailed

CODES = {
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
TERMINAL = {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.REJECTED}
KNOWN = list(CODES)


# --------------------------------------------------------------------------
# TaskStatus
# --------------------------------------------------------------------------


def test_status_members() -> None:
    assert len(KNOWN) == 11
    # HOSTED.md adds cancelling and rejected; DISPATCHED is the hosted name of SCHEDULED.
    assert set(TaskStatus) == {*KNOWN, TaskStatus.CANCELLING, TaskStatus.REJECTED, TaskStatus.UNKNOWN}
    assert TaskStatus.DISPATCHED is TaskStatus.SCHEDULED


@pytest.mark.parametrize("status", list(TaskStatus), ids=lambda s: s.name)
def test_status_is_a_str_enum(status: TaskStatus) -> None:
    name = status.name.lower()
    assert isinstance(status, str)
    assert status == name
    assert status.value == name
    assert str(status) == name
    assert f"{status}" == name
    assert f"{status:>12}" == f"{name:>12}"
    assert format(status) == name
    assert f"{status!s}" == name
    assert json.dumps(status) == json.dumps(name)
    assert TaskStatus(name) is status


@pytest.mark.parametrize(("status", "code"), list(CODES.items()), ids=lambda v: str(v))
def test_status_code(status: TaskStatus, code: int) -> None:
    assert status.code == code


def test_unknown_has_no_code() -> None:
    assert TaskStatus.UNKNOWN.code is None


@pytest.mark.parametrize(("status", "code"), list(CODES.items()), ids=lambda v: str(v))
def test_from_wire_int(status: TaskStatus, code: int) -> None:
    assert TaskStatus.from_wire(code) is status


@pytest.mark.parametrize("status", KNOWN, ids=lambda s: s.name)
def test_from_wire_name(status: TaskStatus) -> None:
    assert TaskStatus.from_wire(status.value) is status
    assert TaskStatus.from_wire(status.value.upper()) is status
    assert TaskStatus.from_wire(f"  {status.value}\n") is status


@pytest.mark.parametrize("status", list(TaskStatus), ids=lambda s: s.name)
def test_from_wire_status_is_identity(status: TaskStatus) -> None:
    assert TaskStatus.from_wire(status) is status


@pytest.mark.parametrize(
    "value",
    [0, 9, 13, -1, 10**20, "", "done", "unknown", "runnin", "7", "setting-up", None, True, False, 7.0, [7], {}],
    ids=repr,
)
def test_from_wire_unknown(value: Any) -> None:
    assert TaskStatus.from_wire(value) is TaskStatus.UNKNOWN


@given(st.one_of(st.integers(), st.text(), st.none(), st.booleans(), st.floats()))
def test_from_wire_never_raises(value: Any) -> None:
    status = TaskStatus.from_wire(value)
    assert isinstance(status, TaskStatus)
    if isinstance(value, int) and not isinstance(value, bool) and value in CODES.values():
        assert status.code == value
    elif status is not TaskStatus.UNKNOWN:
        assert isinstance(value, str)
        assert value.strip().lower() == status.value


@pytest.mark.parametrize("status", list(TaskStatus), ids=lambda s: s.name)
def test_is_terminal(status: TaskStatus) -> None:
    assert status.is_terminal is (status in TERMINAL)


# --------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "total", "fraction"),
    [
        (0, 10, 0.0),
        (5, 10, 0.5),
        (10, 10, 1.0),
        (1, 3, 1 / 3),
        (15, 10, 1.0),  # clamped
        (-5, 10, 0.0),  # clamped
        (0, 0, 0.0),
        (5, 0, 0.0),
        (5, -10, 0.0),
        (-5, -10, 0.0),
    ],
)
def test_progress_fraction(current: int, total: int, fraction: float) -> None:
    assert Progress(current, total).fraction == pytest.approx(fraction)


@given(st.integers(), st.integers())
def test_progress_fraction_is_within_bounds(current: int, total: int) -> None:
    fraction = Progress(current, total).fraction
    assert 0.0 <= fraction <= 1.0
    if total <= 0:
        assert fraction == 0.0


def test_progress_from_wire() -> None:
    assert Progress.from_wire({"current": 3, "total": 8}) == Progress(3, 8)
    assert Progress.from_wire({"current": 3.9, "total": 8.0}) == Progress(3, 8)
    assert Progress.from_wire({"current": 3, "total": 8, "extra": "ignored"}) == Progress(3, 8)
    assert Progress.from_wire(None) is None
    progress = Progress(1, 2)
    assert Progress.from_wire(progress) is progress


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"current": 1},
        {"total": 1},
        {"current": "1", "total": 2},
        {"current": 1, "total": None},
        {"current": True, "total": 2},
        {"current": 1, "total": False},
        {"current": [1], "total": 2},
        {"current": float("nan"), "total": 2},
        {"current": 1, "total": float("inf")},
        {"current": float("-inf"), "total": 2},
        [1, 2],
        (1, 2),
        "1/2",
        0.5,
        1,
    ],
    ids=repr,
)
def test_progress_from_wire_bad_shape(value: Any) -> None:
    with pytest.raises(ProtocolError, match="progress"):
        Progress.from_wire(value)


def test_progress_nan_from_json_is_a_protocol_error() -> None:
    """``json.loads`` accepts ``NaN``; it must not escape as ValueError."""
    with pytest.raises(ProtocolError):
        Progress.from_wire(json.loads('{"current": NaN, "total": 10}'))
    with pytest.raises(ProtocolError) as info:
        TaskUpdate.from_wire(4, json.loads('{"task_id": "t", "progress": {"current": 1, "total": Infinity}}'))
    assert info.value.event_id == "4"


# --------------------------------------------------------------------------
# TaskUpdate
# --------------------------------------------------------------------------

FULL_UPDATE = {
    "task_id": "task_1",
    "status": 7,
    "progress": {"current": 2, "total": 4},
    "logs": ["line 1", "line 2"],
    "partial_output": {"text": "par"},
    "output": None,
    "error": None,
    "timestamp": "2024-01-01T00:00:00Z",
}


def test_update_from_wire_full() -> None:
    update = TaskUpdate.from_wire(12, FULL_UPDATE)
    assert update == TaskUpdate(
        task_id="task_1",
        event_id=12,
        status=TaskStatus.RUNNING,
        progress=Progress(2, 4),
        logs=("line 1", "line 2"),
        partial_output={"text": "par"},
        output=None,
        error=None,
        timestamp="2024-01-01T00:00:00Z",
    )
    assert not update.is_terminal


def test_update_from_wire_minimal() -> None:
    update = TaskUpdate.from_wire(1, {"task_id": "t"})
    assert update == TaskUpdate("t", 1, TaskStatus.UNKNOWN)
    assert update.progress is None
    assert update.logs == ()
    assert update.partial_output is None
    assert update.output is None
    assert update.error is None
    assert update.timestamp is None


@pytest.mark.parametrize(
    ("data", "status", "terminal"),
    [
        ({"task_id": "t", "status": "completed", "output": {"x": 1}}, TaskStatus.COMPLETED, True),
        ({"task_id": "t", "status": 11, "error": "boom"}, TaskStatus.FAILED, True),
        ({"task_id": "t", "status": "cancelled"}, TaskStatus.CANCELLED, True),
        ({"task_id": "t", "status": 2}, TaskStatus.QUEUED, False),
        ({"task_id": "t", "status": 99}, TaskStatus.UNKNOWN, False),
        ({"task_id": "t", "status": "brand-new"}, TaskStatus.UNKNOWN, False),
    ],
)
def test_update_status_and_terminal(data: dict[str, Any], status: TaskStatus, terminal: bool) -> None:
    update = TaskUpdate.from_wire(3, data)
    assert update.status is status
    assert update.is_terminal is terminal
    assert update.output == data.get("output")
    assert update.error == data.get("error")


def test_update_logs_list_becomes_tuple() -> None:
    update = TaskUpdate.from_wire(1, {"task_id": "t", "logs": []})
    assert update.logs == ()
    update = TaskUpdate.from_wire(1, {"task_id": "t", "logs": ["a"]})
    assert update.logs == ("a",)
    assert isinstance(update.logs, tuple)


@pytest.mark.parametrize("data", [None, [], ["task_id"], "text", 3, 2.5, True], ids=repr)
def test_update_not_a_dict(data: Any) -> None:
    with pytest.raises(ProtocolError, match="not a JSON object") as info:
        TaskUpdate.from_wire(17, data)
    assert info.value.event_id == "17"
    assert "17" in str(info.value)


@pytest.mark.parametrize(
    "data",
    [{}, {"task_id": None}, {"task_id": 5}, {"task_id": ["t"]}, {"id": "t", "status": 7}],
    ids=repr,
)
def test_update_missing_task_id(data: Any) -> None:
    with pytest.raises(ProtocolError, match="task_id") as info:
        TaskUpdate.from_wire(5, data)
    assert info.value.event_id == "5"


@pytest.mark.parametrize(
    "logs",
    ["one line", ["a", 1], [None], {"a": 1}, 3, [["nested"]], True],
    ids=repr,
)
def test_update_bad_logs(logs: Any) -> None:
    with pytest.raises(ProtocolError, match="logs") as info:
        TaskUpdate.from_wire(8, {"task_id": "t", "logs": logs})
    assert info.value.event_id == "8"
    assert "event id '8'" in str(info.value)


@pytest.mark.parametrize(
    "progress",
    [{"current": 1}, {"current": "1", "total": 2}, [1, 2], "50%", 0.5],
    ids=repr,
)
def test_update_bad_progress(progress: Any) -> None:
    with pytest.raises(ProtocolError, match="progress") as info:
        TaskUpdate.from_wire(9, {"task_id": "t", "progress": progress})
    assert info.value.event_id == "9"


@pytest.mark.parametrize("field", ["error", "timestamp"])
def test_update_bad_optional_strings(field: str) -> None:
    with pytest.raises(ProtocolError, match=field) as info:
        TaskUpdate.from_wire(10, {"task_id": "t", field: 123})
    assert info.value.event_id == "10"


def test_update_error_excerpt_is_short() -> None:
    with pytest.raises(ProtocolError) as info:
        TaskUpdate.from_wire(1, "x" * 10_000)
    assert len(str(info.value)) < 200


# --------------------------------------------------------------------------
# Task
# --------------------------------------------------------------------------

FULL_TASK = {
    "id": "task_1",
    "app": "acme/echo",
    "status": 10,
    "input": {"text": "hi"},
    "output": {"text": "hi"},
    "error": None,
    "logs": ["started", "done"],
    "progress": {"current": 1, "total": 1},
    "created_at": "2024-01-01T00:00:00Z",
    "updated_at": "2024-01-01T00:00:01Z",
}


def test_task_from_wire_full() -> None:
    task = Task.from_wire(FULL_TASK)
    assert task == Task(
        id="task_1",
        app="acme/echo",
        status=TaskStatus.COMPLETED,
        input={"text": "hi"},
        raw_output={"text": "hi"},
        error=None,
        logs=("started", "done"),
        progress=Progress(1, 1),
        created_at="2024-01-01T00:00:00Z",
        updated_at="2024-01-01T00:00:01Z",
    )
    assert task.output == {"text": "hi"}
    assert task.is_terminal
    assert task.raise_for_status() is task


def test_task_from_wire_minimal() -> None:
    task = Task.from_wire({"id": "t"})
    assert task == Task("t", "", TaskStatus.UNKNOWN)
    assert task.output is None
    assert not task.is_terminal
    assert task.raise_for_status() is task


@pytest.mark.parametrize("app", [None, 5, ["a"]], ids=repr)
def test_task_app_not_a_string_is_empty(app: Any) -> None:
    assert Task.from_wire({"id": "t", "app": app}).app == ""


@pytest.mark.parametrize(
    "data",
    [None, [], "task", 1, {}, {"id": None}, {"id": 5}, {"task_id": "t"}],
    ids=repr,
)
def test_task_from_wire_bad_shape(data: Any) -> None:
    with pytest.raises(ProtocolError, match="task"):
        Task.from_wire(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("logs", "x"),
        ("logs", [1]),
        ("progress", {"current": 1}),
        ("error", 1),
        ("created_at", 1),
        ("updated_at", ["x"]),
    ],
)
def test_task_from_wire_bad_field(field: str, value: Any) -> None:
    with pytest.raises(ProtocolError, match=field):
        Task.from_wire({"id": "t", field: value})


def test_task_output_failed() -> None:
    task = Task.from_wire({"id": "t9", "status": "failed", "error": "out of memory", "output": {"x": 1}})
    with pytest.raises(TaskFailed) as info:
        _ = task.output
    assert info.value.task_id == "t9"
    assert info.value.error == "out of memory"
    assert "out of memory" in str(info.value)
    with pytest.raises(TaskFailed):
        task.raise_for_status()
    assert task.raw_output == {"x": 1}  # never raises
    assert task.is_terminal


def test_task_output_failed_without_message() -> None:
    task = Task("t", "a", TaskStatus.FAILED)
    with pytest.raises(TaskFailed) as info:
        _ = task.output
    assert info.value.error is None


def test_task_output_cancelled() -> None:
    task = Task.from_wire({"id": "t8", "status": 12})
    with pytest.raises(TaskCancelled) as info:
        _ = task.output
    assert info.value.task_id == "t8"
    with pytest.raises(TaskCancelled):
        task.raise_for_status()
    assert task.raw_output is None
    assert task.is_terminal


def test_task_output_raises_rejected() -> None:
    from inferencesh._errors import TaskRejected

    task = Task("t", "a", TaskStatus.REJECTED, error="insufficient balance")
    with pytest.raises(TaskRejected) as info:
        task.output  # noqa: B018 - the property raises
    assert isinstance(info.value, TaskFailed)
    assert info.value.error == "insufficient balance"


@pytest.mark.parametrize(
    "status", [s for s in TaskStatus if s not in (TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.REJECTED)]
)
def test_task_output_other_statuses(status: TaskStatus) -> None:
    task = Task("t", "a", status, raw_output=[1, 2])
    assert task.output == [1, 2]
    assert task.raise_for_status() is task


# --------------------------------------------------------------------------
# Frozen, hashable values
# --------------------------------------------------------------------------

INSTANCES = [
    Progress(1, 2),
    TaskUpdate("t", 1, TaskStatus.RUNNING, Progress(1, 2), ("log",), "partial", "out", None, "ts"),
    Task("t", "app", TaskStatus.COMPLETED, "in", "out", None, ("log",), Progress(1, 1), "c", "u"),
    Message("text", "hello", "m1", 3),
    ToolCall("c1", "search", (("q", "x"),), 4),
    Done("completed", "m1", None, 5),
    Reply("chat", "m1", "text", "thinking", "completed", (ToolCall("c1", "f", ()),), None),
]


@pytest.mark.parametrize("instance", INSTANCES, ids=lambda i: type(i).__name__)
def test_frozen(instance: Any) -> None:
    first = attrs.fields(type(instance))[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(instance, first, "changed")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        delattr(instance, first)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        instance.new_attribute = 1
    assert not hasattr(instance, "__dict__")  # slotted


@pytest.mark.parametrize("instance", INSTANCES, ids=lambda i: type(i).__name__)
def test_hashable_and_equal_by_value(instance: Any) -> None:
    twin = attrs.evolve(instance)
    assert twin == instance
    assert twin is not instance
    assert hash(twin) == hash(instance)
    assert len({instance, twin}) == 1
    first = attrs.fields(type(instance))[0].name
    other = attrs.evolve(instance, **{first: "different"})
    assert other != instance


def test_from_wire_results_are_hashable() -> None:
    wire = {"task_id": "t", "status": 7, "logs": ["a"], "progress": {"current": 1, "total": 2}}
    update = TaskUpdate.from_wire(1, wire)
    assert {update: 1}[TaskUpdate.from_wire(1, {**wire, "status": "running"})] == 1
    task = Task.from_wire({"id": "t", "status": "running", "logs": ["a"]})
    assert hash(task) == hash(Task.from_wire({"id": "t", "status": 7, "logs": ["a"]}))


def test_frozen_update_from_wire() -> None:
    update = TaskUpdate.from_wire(1, FULL_UPDATE)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        update.status = TaskStatus.COMPLETED  # type: ignore[misc]
    task = Task.from_wire(FULL_TASK)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        task.raw_output = None  # type: ignore[misc]


def test_defaults_of_agent_events() -> None:
    assert Message("text", "hi") == Message("text", "hi", "", None)
    assert ToolCall("c", "f").args == {}
    assert ToolCall("c", "f").args is not ToolCall("c", "f").args
    assert Done("completed") == Done("completed", "", None, None)
    assert Reply("c", "m", "t", "", "completed").tool_calls == ()


def test_to_wire_round_trips_an_update() -> None:
    wire = {
        "task_id": "tsk_1",
        "status": 7,
        "progress": {"current": 2, "total": 8},
        "logs": ["Step 2/8"],
        "partial_output": {"step": 2},
        "output": None,
        "error": None,
        "timestamp": "2026-11-30T00:00:00Z",
    }
    update = TaskUpdate.from_wire(5, wire)
    assert update.to_wire() == {**wire, "status": "running"}
    assert TaskUpdate.from_wire(5, update.to_wire()) == update


def test_to_wire_round_trips_a_task() -> None:
    wire = {
        "id": "tsk_1",
        "app": "infsh/echo",
        "status": "failed",
        "input": {"a": 1},
        "output": None,
        "error": "boom",
        "logs": ["a", "b"],
        "progress": None,
        "created_at": "2026-11-30T00:00:00Z",
        "updated_at": "2026-11-30T00:00:01Z",
    }
    task = Task.from_wire(wire)
    assert task.to_wire() == wire
    assert Task.from_wire(task.to_wire()) == task


def test_real_updates_tasks_and_tool_calls_with_json_values_are_hashable() -> None:
    update = TaskUpdate("t", 1, TaskStatus.COMPLETED, partial_output={"response": "a"}, output={"image": [1, 2]})
    task = Task("t", "app", TaskStatus.COMPLETED, input={"prompt": "x"}, raw_output={"image": "u"})
    call = ToolCall("c1", "get_weather", {"city": "Paris"})
    reply = Reply("chat", "m1", "text", "", "completed", (call,))
    for value in (update, task, call, reply):
        assert {value: 1}[attrs.evolve(value)] == 1
    assert attrs.evolve(update, output={"image": [1, 3]}) != update  # still compared by value
