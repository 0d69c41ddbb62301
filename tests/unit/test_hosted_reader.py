"""The hosted dialect's readers, fed objects directly (no server): merging, history, logs, deltas, chats."""

from __future__ import annotations

from typing import Any, Optional

import attrs
import pytest

from inferencesh import Done, Message, Progress, TaskStatus, TaskUpdate, ToolCall
from inferencesh._answers import envelope
from inferencesh._hosted import DeltaAccumulator, HostedTaskReader, _LogCursor, looks_hosted, tqdm_progress
from inferencesh._hosted_chat import HostedChatReader, turn_ids
from inferencesh._watchdog import _Abort


def _task_reader() -> HostedTaskReader:
    return HostedTaskReader(
        None,  # type: ignore[arg-type]  # no recover() in these tests
        "tsk_1",
        "/tasks/tsk_1",
        _Abort(None),
        reconcile_interval=30.0,
        heard=lambda: None,
    )


def _dto(status: int, history: list[int], logs: Optional[list[dict[str, Any]]] = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "tsk_1",
        "status": status,
        "events": [{"id": f"ev{i}", "event_time": f"t{i}", "status": code} for i, code in enumerate(history)],
        "logs": logs or [],
        **extra,
    }


def _statuses(updates: list[TaskUpdate]) -> list[str]:
    return [u.status.value for u in updates]


# -- statuses --------------------------------------------------------------------------------------


def test_first_snapshot_hands_out_the_whole_history_in_order() -> None:
    reader = _task_reader()
    updates = reader.take(_dto(7, [1, 2, 3, 4, 7]))
    assert _statuses(updates) == ["received", "queued", "scheduled", "preparing", "running"]
    assert [u.event_id for u in updates] == [1, 2, 3, 4, 5]


def test_a_repeated_snapshot_adds_nothing() -> None:
    reader = _task_reader()
    reader.take(_dto(7, [1, 2, 7], [{"id": "l1", "content": "a\nb\n"}]))
    assert reader.take(_dto(7, [1, 2, 7], [{"id": "l1", "content": "a\nb\n"}])) == []


def test_partial_updates_merge_and_each_status_is_handed_out_once() -> None:
    reader = _task_reader()
    reader.take(_dto(1, [1]))
    assert _statuses(reader.take({"data": {"id": "tsk_1", "status": 2}, "fields": ["status"]})) == ["queued"]
    assert reader.take({"data": {"id": "tsk_1", "status": 2}, "fields": ["status"]}) == []
    assert _statuses(reader.take({"data": {"id": "tsk_1", "status": 7}, "fields": ["status"]})) == ["running"]


def test_a_history_read_after_a_drop_gives_exactly_the_missed_statuses() -> None:
    reader = _task_reader()
    reader.take(_dto(2, [1, 2]))
    reader.task.update(_dto(10, [1, 2, 3, 7, 9, 10], output={"x": 1}))
    updates = reader.sync()
    assert _statuses(updates) == ["scheduled", "running", "uploading", "completed"]
    assert updates[-1].output == {"x": 1}
    assert updates[-1].is_terminal


def test_hosted_codes_use_the_hosted_table() -> None:
    reader = _task_reader()
    updates = reader.take(_dto(8, [1, 7, 8]))
    assert updates[-1].status is TaskStatus.CANCELLING
    assert reader.take(_dto(13, [1, 7, 8, 13]))[-1].status is TaskStatus.REJECTED


def test_failed_task_carries_its_error_and_no_output() -> None:
    reader = _task_reader()
    reader.take(_dto(7, [7]))
    update = reader.take({"data": {"id": "tsk_1", "status": 11, "error": "boom"}, "fields": ["status", "error"]})[-1]
    assert (update.status, update.error, update.output) == (TaskStatus.FAILED, "boom", None)


def test_heartbeats_and_unknown_typed_events_are_skipped() -> None:
    reader = _task_reader()
    assert reader.take({"event": "chats", "data": {"id": "c"}}) == []
    assert list(reader.from_ndjson(iter([[{"type": "heartbeat"}]]))) == []


# -- logs ------------------------------------------------------------------------------------------


def test_growing_records_hand_out_each_line_once_in_order() -> None:
    cursor = _LogCursor()
    assert cursor.new_lines([{"id": "a", "content": "one\ntw"}], flush=False) == ["one"]
    assert cursor.new_lines([{"id": "a", "content": "one\ntwo\n"}], flush=False) == ["two"]
    records = [{"id": "a", "content": "one\ntwo\n"}, {"id": "b", "content": "x\r\ny"}]
    assert cursor.new_lines(records, flush=False) == ["x"]
    assert cursor.new_lines(records, flush=True) == ["y"]
    assert cursor.new_lines(records, flush=True) == []


def test_a_cr_at_the_end_waits_for_its_lf() -> None:
    cursor = _LogCursor()
    assert cursor.new_lines([{"id": "a", "content": "one\r"}], flush=False) == []
    assert cursor.new_lines([{"id": "a", "content": "one\r\ntwo\n"}], flush=False) == ["one", "two"]


def test_log_lines_go_with_the_last_running_status_and_progress_comes_from_tqdm() -> None:
    reader = _task_reader()
    line = " 42%|████▏     | 21/50 [00:01<00:01, 20.1it/s]"
    updates = reader.take(_dto(10, [1, 7, 10], [{"id": "l", "content": f"start\n{line}\n"}], output=1))
    assert [u.logs for u in updates] == [(), ("start", line), ()]
    assert updates[1].progress == Progress(21, 50)
    assert updates[2].progress == Progress(21, 50)


def test_tqdm_progress() -> None:
    assert tqdm_progress("100%|██████████| 4/4 [00:01<00:00,  4.00it/s]") == Progress(4, 4)
    assert tqdm_progress("loading 42 of 50") is None


# -- deltas ----------------------------------------------------------------------------------------


def test_deltas_concatenate_merge_tool_calls_by_index_and_replace_usage() -> None:
    acc = DeltaAccumulator()
    assert acc.snapshot() is None
    acc.add({"reasoning": "Hm"})
    acc.add(
        {"response": "Hel", "tool_calls": [{"index": 0, "id": "c1", "function": {"name": "get", "arguments": '{"ci'}}]}
    )
    acc.add({"response": "lo", "tool_calls": [{"index": 0, "function": {"arguments": 'ty": 1}'}}]})
    acc.add({"usage": {"total_tokens": 3}})
    acc.add({"usage": {"total_tokens": 5}})
    snap = acc.snapshot()
    assert snap == {
        "reasoning": "Hm",
        "response": "Hello",
        "tool_calls": [{"index": 0, "id": "c1", "function": {"name": "get", "arguments": '{"city": 1}'}}],
        "usage": {"total_tokens": 5},
    }
    acc.add({"response": "!"})
    assert snap["response"] == "Hello"  # a snapshot handed out never changes


def test_deltas_read_together_make_one_update() -> None:
    reader = _task_reader()
    reader.take(_dto(7, [7]))
    deltas = [{"event": "delta", "data": {"delta": {"response": w}, "resource_id": ""}} for w in ("a", "b", "c")]
    status = {"data": {"id": "tsk_1", "status": 9}, "fields": ["status"]}
    updates = list(reader.from_ndjson(iter([deltas, [*deltas, status], []])))
    assert [u.partial_output for u in updates] == [{"response": "abc"}, {"response": "abcabc"}, {"response": "abcabc"}]
    assert [u.status.value for u in updates] == ["running", "running", "uploading"]


def test_delta_events_become_partial_output() -> None:
    reader = _task_reader()
    reader.take(_dto(7, [7]))
    first = reader.take({"event": "delta", "data": {"delta": {"response": "Hi"}, "seq": 1, "resource_id": ""}})
    second = reader.take({"event": "delta", "data": {"delta": {"response": " there"}, "seq": 2, "resource_id": ""}})
    assert first[0].partial_output == {"response": "Hi"}
    assert second[0].partial_output == {"response": "Hi there"}
    assert second[0].status is TaskStatus.RUNNING


# -- shapes and envelopes ---------------------------------------------------------------------------


def test_looks_hosted() -> None:
    assert looks_hosted({"id": "t", "short_id": "t", "status": 1}) is True
    assert looks_hosted({"id": "t", "app": "a", "status": 1, "logs": [], "progress": None}) is False
    assert looks_hosted({"id": "t"}) is None


class _Response:
    def __init__(self, body: bytes, status: int = 200) -> None:
        import json

        self.content = body
        self.status_code = status
        self.headers = {"Content-Type": "application/json"}
        self.text = body.decode()
        self._json = json.loads(body) if body.strip() else None

    def json(self) -> Any:
        return self._json


@pytest.mark.parametrize(
    ("body", "data", "dialect"),
    [
        (b'{"data": {"id": "t"}}', {"id": "t"}, None),
        (b'{"data": {"id": "t"}, "messages": []}', {"id": "t"}, "hosted"),
        (b'{"success": true, "status": 200, "data": {"id": "t"}}', {"id": "t"}, "hosted"),
        (b'{"id": "t", "status": 7}', {"id": "t", "status": 7}, "hosted"),
        (b"", None, None),
    ],
)
def test_every_envelope_is_read(body: bytes, data: Any, dialect: Optional[str]) -> None:
    assert envelope(_Response(body)) == (data, dialect)  # type: ignore[arg-type]


def test_success_false_is_an_api_error_with_its_code() -> None:
    from inferencesh import APIError

    with pytest.raises(APIError) as info:
        envelope(_Response(b'{"success": false, "status": 402, "error": {"code": "no_balance", "message": "top up"}}'))  # type: ignore[arg-type]
    assert (info.value.status_code, info.value.code, info.value.detail) == (402, "no_balance", "top up")


# -- chats -----------------------------------------------------------------------------------------


def _chat_reader() -> HostedChatReader:
    return HostedChatReader(
        None,  # type: ignore[arg-type]
        "/chats/c1",
        _Abort(None),
        message_id="m2",
        user={"id": "m1", "order": 1},
        reconcile_interval=30.0,
        heard=lambda: None,
    )


def _message(mid: str, status: str, text: str = "", thinking: str = "", order: int = 2, **extra: Any) -> dict[str, Any]:
    content = []
    if thinking:
        content.append({"type": "reasoning", "text": thinking})
    if text:
        content.append({"type": "text", "text": text})
    return {
        "id": mid,
        "chat_id": "c1",
        "role": "assistant",
        "status": status,
        "order": order,
        "content": content,
        **extra,
    }


def _events(reader: HostedChatReader, *objects: dict[str, Any]) -> list[Any]:
    """The events the objects give, their ``event_id`` (checked apart) cleared."""
    events = list(reader.from_ndjson(iter([list(objects)])))
    return [attrs.evolve(event, event_id=None) for event in events]


def test_turn_ids() -> None:
    answer = {"user_message": {"id": "m1"}, "assistant_message": {"id": "m2", "chat_id": "c1"}}
    assert turn_ids(answer) == ("c1", "m2", {"id": "m1"})
    assert turn_ids({"chat_id": "c1", "message_id": "m2"}) is None


def test_an_idle_chat_left_from_the_previous_turn_does_not_end_the_new_one() -> None:
    reader = _chat_reader()
    old = _message("m0", "ready", "old answer", order=0)
    events = _events(
        reader,
        {"event": "chat_messages", "data": old},
        {"event": "chats", "data": {"id": "c1", "status": "idle", "active_run": {"state": "completed"}}},
    )
    assert events == []
    events = _events(
        reader,
        {"event": "chats", "data": {"id": "c1", "status": "busy", "active_run": {"state": "working"}}},
        {"event": "delta", "data": {"delta": {"reasoning": "Hm"}, "resource_id": "m2", "seq": 1}},
        {"event": "delta", "data": {"delta": {"response": "Hel"}, "resource_id": "m2", "seq": 2}},
        {"event": "chat_messages", "data": _message("m2", "pending", "Hel", "Hm")},
        {"event": "delta", "data": {"delta": {"response": "lo"}, "resource_id": "m2", "seq": 3}},
        {"event": "chat_messages", "data": _message("m2", "ready", "Hello", "Hm")},
        {"event": "chats", "data": {"id": "c1", "status": "idle", "active_run": {"state": "completed"}}},
    )
    assert events == [
        Message("thinking", "Hm", "m2"),
        Message("text", "Hel", "m2"),
        Message("text", "lo", "m2"),
        Done("completed", "m2", None),
    ]


def test_snapshots_alone_give_the_text_once() -> None:
    reader = _chat_reader()
    events = _events(
        reader,
        {"event": "chat_messages", "data": _message("m2", "pending", "Hel")},
        {"event": "chat_messages", "data": _message("m2", "pending", "Hello")},
        {"event": "chat_messages", "data": _message("m2", "ready", "Hello")},
        {"event": "chats", "data": {"id": "c1", "status": "idle", "active_run": {"state": "canceled"}}},
    )
    assert events == [Message("text", "Hel", "m2"), Message("text", "lo", "m2"), Done("cancelled", "m2", None)]


def test_client_tool_invocations_are_dispatched_once() -> None:
    reader = _chat_reader()
    invocation = {
        "id": "inv1",
        "type": "client",
        "status": "awaiting_input",
        "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
    }
    server_side = {**invocation, "id": "inv2", "type": "internal"}
    snapshot = _message("m2", "pending", tool_invocations=[invocation, server_side])
    events = _events(reader, {"event": "chat_messages", "data": snapshot}, {"event": "chat_messages", "data": snapshot})
    assert events == [ToolCall("inv1", "get_weather", {"city": "Paris"})]


def test_a_failed_run_ends_the_turn_failed_with_its_error() -> None:
    reader = _chat_reader()
    events = _events(
        reader,
        {"event": "agent_runs", "data": {"state": "working"}},
        {"event": "agent_runs", "data": {"state": "failed", "error": "model overloaded"}},
    )
    assert events == [Done("failed", "m2", "model overloaded")]


def test_a_snapshot_ahead_of_the_deltas_does_not_repeat_their_text() -> None:
    reader = _chat_reader()
    events = _events(
        reader,
        {"event": "delta", "data": {"delta": {"response": "Hel"}, "resource_id": "m2", "seq": 1}},
        {"event": "chat_messages", "data": _message("m2", "pending", "Hello")},  # ahead of its deltas
        {"event": "delta", "data": {"delta": {"response": "lo"}, "resource_id": "m2", "seq": 2}},
        {"event": "chat_messages", "data": _message("m2", "ready", "Hello")},
    )
    assert [e.content for e in events] == ["Hel", "lo"]
    assert reader.count == 2


def test_records_replaced_by_only_new_records_lose_no_line() -> None:
    cursor = _LogCursor()
    assert cursor.new_lines([{"id": "l1", "content": "Loading model"}], flush=False) == []  # may still grow
    assert cursor.new_lines([{"id": "l2", "content": "Step 1"}], flush=False) == ["Loading model"]  # l1 is gone
    assert cursor.new_lines([{"id": "l3", "content": "done"}], flush=True) == ["Step 1", "done"]


def test_a_record_followed_by_another_is_complete() -> None:
    cursor = _LogCursor()
    assert cursor.new_lines([{"id": "a", "content": "setup"}, {"id": "b", "content": "run"}], flush=False) == ["setup"]
    assert cursor.new_lines([{"id": "a", "content": "setup"}, {"id": "b", "content": "run 1\n"}], flush=False) == [
        "run 1"
    ]


def test_a_turn_over_before_its_stream_opened_ends_on_its_final_message() -> None:
    reader = _chat_reader()
    events = _events(
        reader,
        {"event": "chats", "data": {"id": "c1", "status": "idle", "active_run": {"state": "completed"}}},
        {"event": "chat_messages", "data": _message("m2", "ready", "All done")},
    )
    assert events == [Message("text", "All done", "m2"), Done("completed", "m2", None)]


def test_without_order_or_times_a_message_after_the_user_message_is_this_turns() -> None:
    reader = HostedChatReader(
        None,  # type: ignore[arg-type]
        "/chats/c1",
        _Abort(None),
        message_id="m2",
        user={"id": "m1"},
        reconcile_interval=30.0,
        heard=lambda: None,
    )
    bare = [
        {"id": m, "role": r, "status": "ready", "content": [{"type": "text", "text": t}]}
        for m, r, t in (
            ("m0", "assistant", "an old answer"),
            ("m1", "user", "weather?"),
            ("m2", "assistant", "Let me check. "),
            ("m3", "assistant", "It is sunny."),
        )
    ]
    events = _events(
        reader,
        *({"event": "chat_messages", "data": message} for message in bare),
        {"event": "chats", "data": {"id": "c1", "status": "idle", "active_run": {"state": "completed"}}},
    )
    assert [getattr(e, "content", None) for e in events] == ["Let me check. ", "It is sunny.", None]


def test_unknown_sse_event_types_are_skipped_unread() -> None:
    from inferencesh._sse import ServerSentEvent

    reader = _task_reader()
    events = iter([ServerSentEvent("ping", "keepalive"), ServerSentEvent("message", '{"id": "tsk_1", "status": 10}')])
    assert [u.status.value for u in reader.from_sse(events)] == ["completed"]


def test_events_ahead_of_a_stale_status_do_not_repeat_it() -> None:
    reader = _task_reader()
    reader.take(_dto(2, [1, 2]))
    updates = reader.take(
        {"data": {"id": "tsk_1", "status": 2, "events": [{"status": s} for s in (1, 2, 7)]}, "fields": ["events"]}
    )
    assert _statuses(updates) == ["running"]
    assert reader.take({"data": {"id": "tsk_1", "status": 7}, "fields": ["status"]}) == []


def test_odd_tool_call_indexes_do_not_escape() -> None:
    acc = DeltaAccumulator()
    acc.add({"tool_calls": [{"index": {}, "function": {"name": "a"}}, {"index": None, "function": {"name": "b"}}]})
    acc.add({"tool_calls": [{"index": "x", "function": {"arguments": "{}"}}]})
    snap = acc.snapshot()
    assert snap is not None and len(snap["tool_calls"]) == 2
