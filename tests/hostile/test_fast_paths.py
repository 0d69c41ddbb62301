"""The hot-path shortcuts give exactly what the general code gives, for any input.

``TaskUpdate.from_wire`` takes exact-type fast paths for what ``json.loads``
returns for a conforming update, and the task stream decodes event data with
``raw_decode`` when the data is one JSON value and nothing else. Hostile or
merely unusual values (a bool status, floats, NaN, subclasses, whitespace,
garbage) must come out, or fail, exactly as through the general converters.
The SSE decoder's block splitter scans each buffer once for NUL and ``retry``
instead of three times per block; it is compared with the splitter as it was.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferencesh import ProtocolError
from inferencesh._sse import ServerSentEvent, SSEDecoder
from inferencesh._stream import _loads
from inferencesh._wire import _logs, _optional_str
from inferencesh.models import Progress, TaskStatus, TaskUpdate


def reference_from_wire(event_id: int, data: Any) -> TaskUpdate:
    """``TaskUpdate.from_wire`` as written before the fast paths: the general converters only."""
    if not isinstance(data, dict):
        raise ProtocolError(f"update is not a JSON object: {data!r}"[:80], event_id=str(event_id))
    task_id = data.get("task_id")
    if not isinstance(task_id, str):
        raise ProtocolError("update has no task_id string", event_id=str(event_id))
    try:
        return TaskUpdate(
            task_id,
            event_id,
            TaskStatus.from_wire(data.get("status")),
            Progress.from_wire(data.get("progress")),
            _logs(data.get("logs")),
            data.get("partial_output"),
            data.get("output"),
            _optional_str(data.get("error"), "error"),
            _optional_str(data.get("timestamp"), "timestamp"),
        )
    except ProtocolError as exc:
        raise ProtocolError(str(exc), event_id=str(event_id)) from None


class Text(str):
    """A str subclass: valid, but not the exact type the fast paths look for."""


class Count(int):
    """An int subclass."""


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.builds(Text, st.text(max_size=4)),
    st.builds(Count, st.integers(-5, 20)),
)
json_like = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.sampled_from(["current", "total", "x"]), inner, max_size=3),
    ),
    max_leaves=6,
)
statuses = st.one_of(json_like, st.integers(-3, 14), st.sampled_from([s.value for s in TaskStatus] + ["RUNNING "]))
progresses = st.one_of(
    json_like,
    st.fixed_dictionaries({"current": json_like, "total": json_like}),
    st.fixed_dictionaries({"current": st.integers(-5, 10**12), "total": st.integers(-5, 10**12)}),
    st.builds(lambda c, t: OrderedDict(current=c, total=t), st.integers(0, 9), st.integers(0, 9)),
)
logs = st.one_of(json_like, st.lists(st.one_of(st.text(max_size=5), st.builds(Text, st.text(max_size=3))), max_size=4))
strings_or_not = st.one_of(st.none(), st.text(max_size=5), st.builds(Text, st.text(max_size=3)), json_like)
updates = st.one_of(
    json_like,
    st.fixed_dictionaries(
        {"task_id": st.one_of(st.just("tsk_1"), json_like)},
        optional={
            "status": statuses,
            "progress": progresses,
            "logs": logs,
            "partial_output": json_like,
            "output": json_like,
            "error": strings_or_not,
            "timestamp": strings_or_not,
        },
    ),
)


def outcome(build: Any, *args: Any) -> tuple[str, Any]:
    try:
        update = build(*args)
    except ProtocolError as exc:
        return "error", (str(exc), exc.event_id)
    return "ok", update


def same(left: Any, right: Any) -> bool:
    """Equality that also holds for NaN in the same place and checks exact types."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float) and math.isnan(left):
        return math.isnan(right)
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k]) for k in left)
    if isinstance(left, TaskUpdate):
        return all(same(getattr(left, f), getattr(right, f)) for f in TaskUpdate.__slots__ if not f.startswith("__"))
    if isinstance(left, Progress):
        return same(left.current, right.current) and same(left.total, right.total)
    return bool(left == right)


@given(st.integers(0, 10**6), updates)
def test_from_wire_matches_the_general_converters(event_id: int, data: Any) -> None:
    fast = outcome(TaskUpdate.from_wire, event_id, data)
    slow = outcome(reference_from_wire, event_id, data)
    assert fast[0] == slow[0], (fast, slow)
    if fast[0] == "ok":
        assert same(fast[1], slow[1]), (fast, slow)
    else:  # same event id; the message may differ only in the excerpt of the offending value
        assert fast[1][1] == slow[1][1]


@pytest.mark.parametrize(
    "data",
    [
        {"task_id": "t", "status": True},
        {"task_id": "t", "status": 7.0},
        {"task_id": "t", "status": Count(7)},
        {"task_id": "t", "status": 99},
        {"task_id": "t", "progress": {"current": True, "total": 3}},
        {"task_id": "t", "progress": {"current": 1.5, "total": 3}},
        {"task_id": "t", "progress": {"current": float("nan"), "total": 3}},
        {"task_id": "t", "progress": {"current": Count(1), "total": 3}},
        {"task_id": "t", "progress": OrderedDict(current=1, total=3)},
        {"task_id": "t", "logs": ("a", Text("b"))},
        {"task_id": "t", "logs": ["a", 1]},
        {"task_id": "t", "error": Text("boom"), "timestamp": 5},
    ],
)
def test_from_wire_edge_cases(data: dict[str, Any]) -> None:
    fast = outcome(TaskUpdate.from_wire, 3, data)
    slow = outcome(reference_from_wire, 3, data)
    assert fast[0] == slow[0]
    if fast[0] == "ok":
        assert same(fast[1], slow[1])


def json_outcome(text: str) -> tuple[str, Optional[Any]]:
    try:
        return "ok", json.loads(text)
    except ValueError as exc:
        return "error", type(exc)


texts = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda value, left, right: left + json.dumps(value) + right,
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
            lambda inner: st.one_of(
                st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
            ),
            max_leaves=8,
        ),
        st.sampled_from(["", " ", "\n", "\ufeff", "x", "\t "]),
        st.sampled_from(["", " ", "\n", "}", ",1", "x", " 1", "\r\n"]),
    ),
)


@given(texts)
def test_loads_matches_json_loads(text: str) -> None:
    expected = json_outcome(text)
    try:
        got: tuple[str, Optional[Any]] = ("ok", _loads(text))
    except ValueError as exc:
        got = ("error", type(exc))
    assert got[0] == expected[0]
    if got[0] == "ok":
        assert same(got[1], expected[1])
    else:
        assert got[1] is expected[1]


class ReferenceDecoder(SSEDecoder):
    """The decoder with ``_split`` as written before its one-scan shortcut."""

    def _split(self, text: bytes) -> Iterator[bytes]:
        blocks = (self._tail + text if self._tail else text).split(b"\n\n")
        self._tail = blocks.pop()
        for block in blocks:
            if len(block) > self.max_event_bytes:
                raise self._too_large()
            if (
                (block.startswith(b"data:") or b"\ndata:" in block)
                and b"\0" not in block
                and not block.startswith(b"retry")
                and b"\nretry" not in block
            ):
                yield block
            elif block.strip(b"\n"):
                cleaned = self._clean(block)
                if cleaned is not None:
                    yield cleaned
        if len(self._tail.removesuffix(b"\n")) > self.max_event_bytes:
            raise self._too_large()


sse_pieces = st.sampled_from(
    [
        *(b"data: x", b"data:", b"id: 1", b"id: \x00", b"retry: 5", b"retry", b"\nretry: 7", b"event: e", b": c"),
        *(b"\n", b"\r\n", b"\r", b"\n\n", b"\x00", b"\xff", b"x" * 40, b"\xef\xbb\xbf"),
    ]
)


def sse_outcome(decoder: SSEDecoder, parts: list[bytes]) -> tuple[list[ServerSentEvent], Optional[str], Any]:
    events: list[ServerSentEvent] = []
    try:
        for item in decoder.iter_events(iter(parts)):
            events.append(item)
    except ProtocolError as exc:
        return events, str(exc), (decoder.retry, decoder.last_event_id)
    return events, None, (decoder.retry, decoder.last_event_id)


@given(st.lists(st.lists(sse_pieces, max_size=12).map(b"".join), max_size=8), st.integers(16, 200))
def test_split_matches_the_reference_decoder(parts: list[bytes], cap: int) -> None:
    assert sse_outcome(SSEDecoder(cap), parts) == sse_outcome(ReferenceDecoder(cap), parts)
