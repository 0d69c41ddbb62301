"""Each fault kind does on the wire exactly what the server's docstring says."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from inferencesh.server import LocalServer

from .helpers import StrictSSEParser, raw_get, read_stream, run, wait_terminal


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(speed=200, heartbeat=0.2) as srv:
        yield srv


def _count_task(server: LocalServer, *faults: dict[str, Any], n: int = 10) -> str:
    task = run(server.url, "infsh/count", {"n": n, "_faults": list(faults)})
    wait_terminal(server.url, task["id"])
    return str(task["id"])


def _blocks(server: LocalServer, task_id: str) -> list[bytes]:
    """The exact bytes of every event block, from a clean replay."""
    raw = raw_get(server.url, f"/tasks/{task_id}/stream")
    assert raw.complete
    return [block + b"\n\n" for block in raw.body.split(b"\n\n")[:-1]][1:]  # drop retry


def test_close_ends_cleanly_after_k_events(server: LocalServer) -> None:
    task_id = _count_task(server, {"kind": "close", "after": 3})
    raw = raw_get(server.url, f"/tasks/{task_id}/stream")
    assert raw.complete and not raw.torn and raw.error is None
    parser = StrictSSEParser()
    parser.feed(raw.body)
    assert [e.id for e in parser.events] == [1, 2, 3] and parser.buffer == b""
    rest = read_stream(server.url, task_id, last_event_id="3")
    assert rest.ids == list(range(4, 13)) and rest.error is None


def test_close_every_time_two_events_per_connection(server: LocalServer) -> None:
    task_id = _count_task(server, {"kind": "close", "after": 2, "times": -1})
    seen: list[int] = []
    connections = 0
    while not seen or seen[-1] != 12:
        result = read_stream(server.url, task_id, last_event_id=str(seen[-1]) if seen else None)
        assert result.error is None
        assert len(result.ids) <= 2
        seen += result.ids
        connections += 1
    assert seen == list(range(1, 13)) and connections == 6


def test_reset_aborts_with_rst(server: LocalServer) -> None:
    task_id = _count_task(server, {"kind": "reset", "after": 2, "times": 2})
    raw = raw_get(server.url, f"/tasks/{task_id}/stream")
    assert isinstance(raw.error, ConnectionResetError), raw
    assert not raw.complete
    parser = StrictSSEParser()
    parser.feed(raw.body)
    assert [e.id for e in parser.events] == [1, 2]

    result = read_stream(server.url, task_id)
    assert isinstance(result.error, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)), (
        result.error
    )
    assert "reset" in repr(result.error).lower() or "104" in repr(result.error)
    assert result.ids == [1, 2]
    assert read_stream(server.url, task_id, last_event_id="2").ids == list(range(3, 13))


def test_cut_sends_half_an_event_then_ends_cleanly(server: LocalServer) -> None:
    task_id = _count_task(server, {"kind": "cut", "after": 2})
    raw = raw_get(server.url, f"/tasks/{task_id}/stream")
    assert raw.complete and raw.error is None
    blocks = _blocks(server, task_id)
    parser = StrictSSEParser()
    parser.feed(raw.body)
    assert [e.id for e in parser.events] == [1, 2]
    assert parser.buffer and blocks[2].startswith(parser.buffer)
    assert len(parser.buffer) == len(blocks[2]) // 2


def test_torn_breaks_chunked_framing(server: LocalServer) -> None:
    task_id = _count_task(server, {"kind": "torn", "after": 2, "times": 2})
    raw = raw_get(server.url, f"/tasks/{task_id}/stream")
    result = read_stream(server.url, task_id)
    blocks = _blocks(server, task_id)  # the fault fired twice: this one is clean

    assert raw.torn and not raw.complete
    assert raw.eof and raw.error is None  # closed with a FIN, mid-chunk
    assert raw.chunks[-1] and blocks[2].startswith(raw.chunks[-1])
    assert b"\r\n%x\r\n" % len(blocks[2]) in raw.raw  # the header promised all of event 3
    parser = StrictSSEParser()
    parser.feed(b"".join(raw.chunks[:-1]))
    assert [e.id for e in parser.events] == [1, 2]

    assert isinstance(result.error, requests.exceptions.ChunkedEncodingError), result.error
    assert "IncompleteRead" in repr(result.error)
    assert result.ids == [1, 2]


def test_stall_sends_nothing_then_goes_on(server: LocalServer) -> None:
    task_id = _count_task(server, {"kind": "stall", "after": 2, "seconds": 0.8})
    result = read_stream(server.url, task_id)
    assert result.error is None and result.ids == list(range(1, 13))
    second, third = result.events[1], result.events[2]
    gap = third.at - second.at
    assert 0.7 <= gap < 2.0, gap
    between = result.items[result.items.index(second) + 1 : result.items.index(third)]
    assert between == []  # not even a heartbeat
    again = read_stream(server.url, task_id)  # fired once: no stall now
    assert again.ids == list(range(1, 13)) and again.events[-1].at - again.started < 0.5


def test_stall_stops_when_client_leaves(server: LocalServer) -> None:
    task_id = _count_task(server, {"kind": "stall", "after": 1, "seconds": 30})
    before = server.open_streams
    result = read_stream(server.url, task_id, max_events=1)
    assert result.ids == [1]
    deadline = time.monotonic() + 2
    while server.open_streams > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.open_streams == before


def test_malformed_event_has_next_id_and_bad_data(server: LocalServer) -> None:
    task_id = _count_task(server, {"kind": "malformed", "after": 2})
    result = read_stream(server.url, task_id)
    assert result.error is None
    assert result.ids == [1, 2, 3]
    bad = result.events[2]
    assert bad.event == "update" and bad.data == "{not json"
    with pytest.raises(json.JSONDecodeError):
        bad.json()
    assert read_stream(server.url, task_id).ids == list(range(1, 13))


def test_overlap_replays_events_the_client_has(server: LocalServer) -> None:
    task_id = _count_task(server, {"kind": "overlap", "back": 2})
    assert read_stream(server.url, task_id).ids == list(range(1, 13))  # no Last-Event-ID
    assert read_stream(server.url, task_id, last_event_id="5").ids == list(range(4, 13))
    assert read_stream(server.url, task_id, last_event_id="5").ids == list(range(6, 13))


def test_faults_that_never_fire_leave_the_stream_alone(server: LocalServer) -> None:
    faults = [{"kind": kind, "after": 100} for kind in ("close", "reset", "cut", "torn")]
    task_id = _count_task(server, *faults, {"kind": "stall", "after": 100, "seconds": 5})
    raw = raw_get(server.url, f"/tasks/{task_id}/stream")
    assert raw.complete
    parser = StrictSSEParser()
    parser.feed(raw.body)
    assert parser.items[0].kind == "retry" and parser.buffer == b""
    assert [e.id for e in parser.events] == list(range(1, 13))


def test_after_zero_fires_before_any_event(server: LocalServer) -> None:
    task_id = _count_task(server, {"kind": "close", "after": 0})
    result = read_stream(server.url, task_id)
    assert [i.kind for i in result.items] == ["retry"] and result.error is None


def test_faults_on_a_live_task(server: LocalServer) -> None:
    task = run(server.url, "infsh/sleep", {"seconds": 40, "_faults": [{"kind": "reset", "after": 3}]})
    first = read_stream(server.url, task["id"])
    assert first.ids == [1, 2, 3] and first.error is not None
    rest = read_stream(server.url, task["id"], last_event_id="3")
    assert rest.ids[0] == 4 and rest.updates[-1]["status"] == 10


def test_server_wide_faults_apply_to_every_task() -> None:
    with LocalServer(speed=200, faults=[{"kind": "close", "after": 1, "times": -1}]) as srv:
        for _ in range(2):
            task = run(srv.url, "infsh/echo", {"_faults": [{"kind": "overlap"}]})
            wait_terminal(srv.url, task["id"])
            assert read_stream(srv.url, task["id"]).ids == [1]
            assert read_stream(srv.url, task["id"], last_event_id="1").ids == [1]
            assert read_stream(srv.url, task["id"], last_event_id="1").ids == [2]


def test_bad_server_faults_raise() -> None:
    with pytest.raises(ValueError):
        LocalServer(faults=[{"kind": "stall", "after": 1}])
    with pytest.raises(ValueError):
        LocalServer(faults=[{"kind": "status", "code": 404}])


def test_reset_ignores_forwarded_headers(server: LocalServer) -> None:
    task_id = _count_task(server, {"kind": "reset", "after": 1})
    raw = raw_get(server.url, f"/tasks/{task_id}/stream", {"X-Forwarded-For": "10.1.2.3"})
    assert isinstance(raw.error, ConnectionResetError), raw
