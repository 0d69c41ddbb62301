"""The hosted task stream (HOSTED.md "The task stream"): NDJSON and SSE, heartbeats, and every fault kind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from inferencesh.server import LocalServer

from .helpers import raw_get
from .hosted_helpers import DTO_KEYS, HEARTBEAT, NDJSON, SSE, Read, get_task, read, run, statuses, wait_terminal

HEARTBEAT_S = 0.1


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(dialect="hosted", speed=20, heartbeat=HEARTBEAT_S) as srv:
        yield srv


def _sleep_task(server: LocalServer, *faults: dict[str, Any], seconds: int = 20) -> str:
    """A task that sends one partial per tick: ``seconds`` ticks of 50 ms (speed 20)."""
    return str(run(server.url, "infsh/sleep", {"seconds": seconds, "_faults": list(faults)})["id"])


def _check_stream(objects: list[Any]) -> None:
    """A whole TaskDTO first, then partials that each carry id and status, the terminal one last."""
    assert set(objects[0]) == DTO_KEYS
    for partial in objects[1:]:
        assert set(partial) == {"data", "fields"}
        assert {"id", "status", "updated_at"} <= set(partial["data"]) and "updated_at" in partial["fields"]
        assert set(partial["fields"]) <= set(partial["data"])
    seen = statuses(objects)
    assert seen == sorted(seen) and seen[-1] == 10
    assert objects[-1]["data"]["output"] == {"slept": 20} and "output" in objects[-1]["fields"]


def test_ndjson_stream(server: LocalServer) -> None:
    task_id = _sleep_task(server)
    got = read(server.url, f"/tasks/{task_id}/stream", NDJSON)
    assert got.status == 200 and got.content_type == NDJSON and got.error is None
    assert got.raw.endswith(b"\n") and not got.bad_lines
    _check_stream(got.data)
    assert len(got.data) >= 15  # the ticks came live, one partial each
    assert got.raw.isascii()


def test_sse_stream(server: LocalServer) -> None:
    task_id = _sleep_task(server)
    got = read(server.url, f"/tasks/{task_id}/stream", SSE)
    assert got.content_type.startswith(SSE) and got.error is None
    assert set(got.events) == {None}  # unnamed events only
    assert b"\nid:" not in got.raw and not got.raw.startswith(b"id:") and b"retry:" not in got.raw
    _check_stream(got.objects)


def test_accept_picks_the_format() -> None:
    with LocalServer(dialect="hosted") as srv:
        task_id = run(srv.url, "infsh/echo", {})["id"]
        wait_terminal(srv.url, task_id)

        def kind(accept: str) -> str:
            return read(srv.url, f"/tasks/{task_id}/stream", accept).content_type.split(";")[0]

        assert kind("application/x-ndjson") == NDJSON
        assert kind("text/event-stream") == SSE
        assert kind("*/*") == SSE
        assert kind("application/x-ndjson, text/event-stream") == NDJSON
        assert kind("text/event-stream, application/x-ndjson") == SSE
        assert kind("text/event-stream;q=0.5, application/x-ndjson") == NDJSON


def test_finished_task_stream_is_one_whole_task() -> None:
    with LocalServer(dialect="hosted") as srv:
        task_id = run(srv.url, "infsh/echo", {"x": "é\u2028"})["id"]
        wait_terminal(srv.url, task_id)
        got = read(srv.url, f"/tasks/{task_id}/stream")
        assert len(got.objects) == 1 and got.objects[0]["status"] == 10
        assert got.objects[0]["output"] == {"x": "é\u2028"} and got.raw.isascii()


def test_heartbeats_ndjson_and_sse() -> None:
    with LocalServer(dialect="hosted", speed=1, heartbeat=0.05) as srv:
        task_id = _sleep_task(srv, seconds=600)
        got = read(srv.url, f"/tasks/{task_id}/stream", NDJSON, stop=lambda r: r.heartbeats >= 3)
        assert got.objects[1:4] == [HEARTBEAT] * 3
        got = read(srv.url, f"/tasks/{task_id}/stream", SSE, stop=lambda r: r.heartbeats >= 3)
        assert len(got.comments) == 3 and len(got.objects) == 1


def test_log_partials_carry_every_record_whole(server: LocalServer) -> None:
    task_id = run(server.url, "infsh/flux-schnell", {"prompt": "p", "steps": 3})["id"]
    got = read(server.url, f"/tasks/{task_id}/stream")
    final = get_task(server.url, task_id)
    with_logs = [obj["data"]["logs"] for obj in got.data[1:] if "logs" in obj["fields"]]
    assert with_logs[-1] == final["logs"]
    for records in with_logs:
        for record in records:
            assert all(line for line in record["content"].split("\n")[:-1])
    failed = run(server.url, "infsh/fail", {"message": "bad"})["id"]
    last = read(server.url, f"/tasks/{failed}/stream").data[-1]
    assert last["data"]["status"] == 11 and last["data"]["error"] == "bad" and "error" in last["fields"]


# -- faults: "after" counts the objects sent on one connection, the opening TaskDTO included


def _live(server: LocalServer, fault: dict[str, Any], accept: str = NDJSON) -> tuple[str, Read]:
    task_id = _sleep_task(server, fault)
    return task_id, read(server.url, f"/tasks/{task_id}/stream", accept)


def test_close_after_k_objects(server: LocalServer) -> None:
    task_id, got = _live(server, {"kind": "close", "after": 3})
    assert got.error is None and len(got.data) == 3 and not got.bad_lines
    assert got.data[0]["status"] < 10
    again = read(server.url, f"/tasks/{task_id}/stream")
    assert statuses(again.data)[-1] == 10  # fired once per task


def test_reset_aborts_the_connection(server: LocalServer) -> None:
    task_id = _sleep_task(server, {"kind": "reset", "after": 2})
    raw = raw_get(server.url, f"/tasks/{task_id}/stream")
    assert isinstance(raw.error, ConnectionResetError) and not raw.complete
    assert raw.body.count(b"data: ") == 2


def test_cut_sends_half_an_object(server: LocalServer) -> None:
    _, got = _live(server, {"kind": "cut", "after": 2})
    assert len(got.data) == 2 and got.error is None
    assert got.raw.count(b"\n") == 2 and not got.raw.endswith(b"\n")  # half a line, then a clean end


def test_torn_breaks_the_chunked_framing(server: LocalServer) -> None:
    task_id = _sleep_task(server, {"kind": "torn", "after": 1})
    raw = raw_get(server.url, f"/tasks/{task_id}/stream", {"X-Note": "sse"})
    assert raw.torn and not raw.complete and raw.body.count(b"data: ") == 2  # one whole, then half of the next


def test_stall_is_silent(server: LocalServer) -> None:
    started = time.monotonic()
    _, got = _live(server, {"kind": "stall", "after": 1, "seconds": 0.6})
    gaps = [b - a for a, b in zip(got.times, got.times[1:])]
    assert max(gaps) >= 0.5 and time.monotonic() - started >= 0.6
    assert statuses(got.data)[-1] == 10


def test_malformed_sends_a_line_that_is_not_json(server: LocalServer) -> None:
    _, got = _live(server, {"kind": "malformed", "after": 2})
    assert len(got.data) == 2 and got.bad_lines == [b"{not json"] and got.error is None
    _, sse = _live(server, {"kind": "malformed", "after": 1}, SSE)
    assert len(sse.objects) == 1 and sse.bad_lines == [b"data: {not json"]


def test_status_fault_answers_the_stream_request(server: LocalServer) -> None:
    task_id = _sleep_task(server, {"kind": "status", "code": 503, "retry_after": 0.2})
    answer = requests.get(f"{server.url}/tasks/{task_id}/stream", headers={"Accept": NDJSON}, timeout=5)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "0.2"
    assert answer.json()["type"] == "https://inference.sh/errors/service_unavailable"


def test_mute_sends_only_heartbeats_while_the_task_finishes(server: LocalServer) -> None:
    task_id = _sleep_task(server, {"kind": "mute", "after": 2}, seconds=4)
    got = read(
        server.url,
        f"/tasks/{task_id}/stream",
        stop=lambda r: r.heartbeats >= 3 and get_task(server.url, task_id)["status"] == 10,
    )
    assert len(got.data) == 2 and statuses(got.data)[-1] < 10
    assert got.objects[2:] == [HEARTBEAT] * (len(got.objects) - 2)
    assert get_task(server.url, task_id)["status"] == 10  # only a re-read tells
    poll_gone = time.monotonic() + 5
    while server.open_streams and time.monotonic() < poll_gone:
        time.sleep(0.01)
    assert server.open_streams == 0  # the muted stream ends when its client leaves


def test_mute_also_works_in_v1() -> None:
    with LocalServer(speed=20, heartbeat=0.05) as v1:
        answer = requests.post(
            f"{v1.url}/apps/run",
            json={"app": "infsh/sleep", "input": {"seconds": 2, "_faults": [{"kind": "mute", "after": 1}]}},
            timeout=5,
        )
        task_id = answer.json()["data"]["id"]
        response = requests.get(f"{v1.url}/tasks/{task_id}/stream", stream=True, timeout=5)
        body = b""
        for chunk in response.iter_content(chunk_size=None):
            body += chunk
            if body.count(b": ping") >= 3:
                break
        response.close()
        assert body.count(b"\nid: ") + body.startswith(b"id: ") <= 1 and body.count(b"event: update") == 1
