"""The task endpoints and the event stream, checked literally against PROTOCOL.md."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import requests
from PIL import Image

from inferencesh.server import LocalServer

from .helpers import UPDATE_KEYS, read_stream, run, wait_terminal

FLOW = [1, 2, 3, 4, 5, 6, 7, 8, 10]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer(speed=200) as srv:
        yield srv


def _rfc3339(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text[:-1] + "+00:00")


def test_echo_stream_numbering_retry_and_fields(server: LocalServer) -> None:
    task = run(server.url, "infsh/echo", {"hello": "world", "n": 3})
    assert task["id"].startswith("tsk_")
    assert task["app"] == "infsh/echo"
    assert task["input"] == {"hello": "world", "n": 3}
    _rfc3339(task["created_at"])
    _rfc3339(task["updated_at"])

    result = read_stream(server.url, task["id"])
    assert result.status == 200
    assert result.headers["content-type"].startswith("text/event-stream")
    assert result.error is None and result.rest == b""
    assert result.items[0].kind == "retry" and result.items[0].retry == 1000
    assert [i.kind for i in result.items[1:]] == ["event"] * len(result.events)
    assert result.ids == list(range(1, len(result.ids) + 1))
    assert all(item.event == "update" for item in result.events)
    for update in result.updates:
        assert set(update) == UPDATE_KEYS
        assert update["task_id"] == task["id"]
        _rfc3339(update["timestamp"])
    last = result.updates[-1]
    assert last["status"] == 10
    assert last["output"] == {"hello": "world", "n": 3}
    assert last["error"] is None
    assert result.updates[0]["status"] == 1


def test_flux_visits_every_status_in_order_and_makes_a_png(server: LocalServer) -> None:
    task = run(server.url, "infsh/flux-schnell", {"prompt": "A sunset timelapse", "steps": 4})
    result = read_stream(server.url, task["id"])
    assert result.error is None
    updates = result.updates
    statuses = [u["status"] for u in updates]
    assert sorted(set(statuses)) == FLOW
    assert statuses == sorted(statuses)  # in flow order, never back
    running = [u for u in updates if u["status"] == 7]
    assert [u["progress"] for u in running[-4:]] == [{"current": i, "total": 4} for i in range(1, 5)]
    previews = [u["partial_output"] for u in running if u["partial_output"] is not None]
    assert [p["step"] for p in previews] == [1, 2, 3, 4]
    assert all(p["preview"].startswith("data:image/png;base64,") for p in previews)
    logs = [line for u in updates for line in u["logs"]]
    assert "Step 3/4" in logs and "simulated FLUX.1-schnell: no model is loaded" in logs  # says it is a simulation
    assert not any("Loading model" in line for line in logs)

    final = updates[-1]
    assert final["status"] == 10 and final["error"] is None
    url = final["output"]["image"]
    assert url.startswith(server.url + "/files/")  # as the hosted service, a URL; public: no key
    png = requests.get(url, timeout=10).content
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG" and image.size == (256, 256)

    again = run(server.url, "infsh/flux-schnell", {"prompt": "A sunset timelapse", "steps": 4})
    other = run(server.url, "infsh/flux-schnell", {"prompt": "A cat", "steps": 4})
    same = wait_terminal(server.url, again["id"])["output"]["image"]
    different = wait_terminal(server.url, other["id"])["output"]["image"]
    assert same != url  # a file of its own for each task...
    assert hashlib.sha256(requests.get(same, timeout=10).content).digest() == hashlib.sha256(png).digest()
    assert requests.get(different, timeout=10).content != png  # ...with the same bytes for the same prompt


def test_logs_are_only_new_lines_and_task_has_them_all(server: LocalServer) -> None:
    task = run(server.url, "infsh/flux-schnell", {"prompt": "logs", "steps": 3})
    result = read_stream(server.url, task["id"])
    streamed = [line for u in result.updates for line in u["logs"]]
    full = requests.get(f"{server.url}/tasks/{task['id']}", timeout=5).json()["data"]
    assert full["logs"] == streamed
    assert len(streamed) == len(set(streamed))  # no line repeated by a later event
    assert full["status"] == 10 and full["output"] == result.updates[-1]["output"]
    assert full["progress"] == {"current": 3, "total": 3}


def test_fail_app_ends_failed_with_error(server: LocalServer) -> None:
    task = run(server.url, "infsh/fail", {"message": "boom"})
    result = read_stream(server.url, task["id"])
    last = result.updates[-1]
    assert last["status"] == 11 and last["error"] == "boom" and last["output"] is None
    assert any(u["logs"] for u in result.updates[:-1])
    assert wait_terminal(server.url, task["id"])["error"] == "boom"


def test_count_sends_n_running_updates(server: LocalServer) -> None:
    task = run(server.url, "infsh/count", {"n": 50})
    result = read_stream(server.url, task["id"])
    running = [u for u in result.updates if u["status"] == 7]
    assert [u["progress"]["current"] for u in running] == list(range(1, 51))
    assert result.updates[-1]["status"] == 10
    assert result.ids == list(range(1, 53))


def test_stream_closes_after_terminal_event(server: LocalServer) -> None:
    task = run(server.url, "infsh/sleep", {"seconds": 2})
    result = read_stream(server.url, task["id"], timeout=5)
    assert result.error is None
    assert result.items[-1].kind == "event" and result.updates[-1]["status"] == 10
    assert result.rest == b""


def test_resume_mid_task_replays_then_goes_live(server: LocalServer) -> None:
    task = run(server.url, "infsh/sleep", {"seconds": 60})  # 60 ticks, ~0.3 s at speed 200
    first = read_stream(server.url, task["id"], max_events=3)
    assert first.ids == [1, 2, 3]
    rest = read_stream(server.url, task["id"], last_event_id="3")
    assert rest.error is None
    assert rest.items[0].kind == "retry"
    assert rest.ids[0] == 4
    assert rest.ids == list(range(4, 4 + len(rest.ids)))
    assert rest.updates[-1]["status"] == 10
    whole = read_stream(server.url, task["id"])
    assert [i.data for i in whole.events] == [i.data for i in first.events + rest.events]


def test_resume_at_terminal_event_closes_empty(server: LocalServer) -> None:
    task = run(server.url, "infsh/echo", {})
    whole = read_stream(server.url, task["id"])
    terminal = whole.ids[-1]
    result = read_stream(server.url, task["id"], last_event_id=str(terminal))
    assert result.status == 200 and result.error is None
    assert result.body == b""
    partial = read_stream(server.url, task["id"], last_event_id=str(terminal - 1))
    assert partial.ids == [terminal]


def test_no_last_event_id_starts_at_one(server: LocalServer) -> None:
    task = run(server.url, "infsh/count", {"n": 3})
    wait_terminal(server.url, task["id"])
    for _ in range(2):
        assert read_stream(server.url, task["id"]).ids == [1, 2, 3, 4, 5]


def test_cancel_sleep_gives_cancelled_event(server: LocalServer) -> None:
    task = run(server.url, "infsh/sleep", {"seconds": 10000})
    first = read_stream(server.url, task["id"], max_events=2)
    answer = requests.post(f"{server.url}/tasks/{task['id']}/cancel", timeout=5)
    assert answer.status_code == 200
    assert answer.json()["data"]["status"] == 12
    rest = read_stream(server.url, task["id"], last_event_id=str(first.ids[-1]))
    assert rest.error is None
    assert rest.updates[-1]["status"] == 12
    assert rest.ids == list(range(first.ids[-1] + 1, rest.ids[-1] + 1))
    time.sleep(0.05)  # the app coroutine is stopped: no event after the cancelled one
    assert read_stream(server.url, task["id"]).ids[-1] == rest.ids[-1]


def test_setup_is_accepted(server: LocalServer) -> None:
    answer = requests.post(
        f"{server.url}/apps/run",
        json={"app": "infsh/echo", "input": {"a": 1}, "setup": {"gpu": "none"}},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.json()["data"]["input"] == {"a": 1}


def test_status_names_server() -> None:
    with LocalServer(speed=200, status_names=True, retry_ms=250) as srv:
        task = run(srv.url, "infsh/flux-schnell", {"prompt": "names", "steps": 1})
        assert task["status"] == "received"
        result = read_stream(srv.url, task["id"])
        assert result.items[0].retry == 250
        assert [u["status"] for u in result.updates] == [
            "received",
            "queued",
            "scheduled",
            "preparing",
            "serving",
            "setting_up",
            "running",
            "running",
            "uploading",
            "completed",
        ]
        assert wait_terminal(srv.url, task["id"])["status"] == "completed"
