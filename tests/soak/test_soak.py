"""The soak (``bench/soak.py``) at N = 200: faults of every kind, K at once, nothing lost, nothing leaked.

The full run (``python bench/soak.py --tasks 10000``) is a benchmark; this is
its small, always-on form. The server is a LocalServer in a child process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.soak import MODES, format_summary, main, run

pytestmark = pytest.mark.timeout(120)


def test_200_faulty_streams_lose_nothing_and_leak_nothing() -> None:
    summary = run(200, concurrency=16, seed=7, speed=20.0, progress=False)
    report = format_summary(summary)
    assert summary["checked_tasks"] == 200, report
    assert summary["lost"] == summary["duplicated"] == summary["out_of_order"] == 0, report
    assert summary["log_mismatches"] == summary["status_mismatches"] == 0, report
    assert summary["untyped_exceptions"] == [], report
    leaks = summary["leaks"]
    assert leaks["server_open_connections"] == 0 and leaks["client_sockets_to_server"] == 0, report
    assert leaks["threads"] == [], report
    # Every mode was drawn, and the faults really happened on the wire.
    assert set(summary["modes_drawn"]) == set(MODES), report
    answers = summary["server_stream_requests"]
    assert answers.get("503", answers.get(503, 0)) > 0 and answers.get("429", answers.get(429, 0)) > 0, report
    assert summary["server_run_requests"]["retried_with_same_key"] > 0, report
    # The only typed errors are the malformed events' ProtocolErrors (no resume, by design).
    assert all(name.startswith("ProtocolError [") and "malformed" in name for name in summary["typed_errors"]), report
    assert summary["ok"], report


def test_main_writes_the_summary_and_exits_zero(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    assert main(["--tasks", "30", "--concurrency", "8", "--seed", "3", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["ok"] is True


def test_a_reconnect_without_new_events_on_a_finished_task_is_a_drop() -> None:
    """Found by the soak: such a stream ended quietly without its remaining events.

    The "closes empty: ask GET /tasks/{id}" shortcut of PROTOCOL.md is for a
    stream resumed from a bare id; a stream that delivered a non-terminal
    update is still owed the terminal one, whatever the task's state.
    """
    from inferencesh import inference
    from inferencesh.server import LocalServer

    with LocalServer(speed=200, heartbeat=0.5, retry_ms=10) as server:
        with inference(api_key="k", base_url=server.url, backoff_initial=0.01, backoff_max=0.05) as client:
            # Event 3 is cut; the reconnect (Last-Event-ID 2) replays 1 and 2 (overlap 2), then is cut again.
            faults = [{"kind": "cut", "after": 2}, {"kind": "overlap", "back": 2}, {"kind": "cut", "after": 2}]
            config = {"app": "infsh/count", "input": {"n": 10, "_faults": faults}}
            updates = list(client.run(config, stream=True, timeout=30))
            assert [u.event_id for u in updates] == list(range(1, 13))  # received, 10 running, completed
            assert updates[-1].is_terminal


def test_resuming_from_a_bare_terminal_id_still_ends_at_once() -> None:
    from inferencesh import inference
    from inferencesh.server import LocalServer

    with LocalServer(speed=200, heartbeat=0.5, retry_ms=10) as server:
        with inference(api_key="k", base_url=server.url) as client:
            task = client.run({"app": "infsh/count", "input": {"n": 3}})
            last = [u.event_id for u in client.tasks.stream(task.id, timeout=10)][-1]
            assert list(client.tasks.stream(task.id, last_event_id=last, timeout=10)) == []
            assert [u.event_id for u in client.tasks.stream(task.id, last_event_id=last - 2, timeout=10)] == [
                last - 1,
                last,
            ]


def test_an_empty_reconnect_on_a_finished_task_is_a_drop() -> None:
    """A reconnect that sends nothing, on a finished task, after this stream delivered events 1 and 2."""
    import socket

    from inferencesh import inference
    from tests.hostile.rawserver import Request, head, serving, update

    def handler(conn: socket.socket, request: Request) -> None:
        if request.path.endswith("/stream"):
            streams = [r for r in server.requests if r.path.endswith("/stream")]
            if len(streams) == 1:
                conn.sendall(head() + update(1) + update(2))  # then a clean end: a drop
            elif len(streams) == 2:
                conn.sendall(head() + b"retry: 10\n\n")  # nothing at all, then a clean end
            else:
                conn.sendall(head() + update(3, status=10))
        else:  # GET /tasks/{id}: the task is over
            body = b'{"data": {"id": "tsk_hostile", "app": "a", "status": 10, "logs": []}}'
            conn.sendall(head(200, "application/json", length=len(body)) + body)

    with serving(handler) as server, inference(api_key="k", base_url=server.url, backoff_initial=0.01) as client:
        assert [u.event_id for u in client.tasks.stream("tsk_hostile", timeout=20)] == [1, 2, 3]
