"""The relay's routes over real sockets: waitress in front of a LocalServer."""

from __future__ import annotations

import statistics
import time
from typing import Callable

from inferencesh import Client, TaskStatus
from inferencesh.server import LocalServer
from tests.helpers import wait_until

from .conftest import Served, make_client
from .helpers import SECRET, SSEReader, flux, post_json, request, stream

STATUS_NAMES = {status.value for status in TaskStatus}


def run(served: Served, config: dict[str, object]) -> str:
    answer = post_json(served.base + "/proxy", config)
    assert answer.status == 200, answer.body
    return str(answer.json()["data"]["id"])


def test_proxy_starts_a_run_with_the_key_added_server_side(
    upstream: LocalServer, client: Client, serve: Callable[..., Served]
) -> None:
    served = serve(client)
    upstream.clear_requests()
    answer = post_json(served.base + "/proxy", {"app": "infsh/echo", "input": {"hello": "world"}})
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    task = answer.json()["data"]
    assert task["id"].startswith("tsk_")
    assert task["app"] == "infsh/echo"
    assert task["input"] == {"hello": "world"}
    assert task["status"] == "received"  # the upstream sent the code 1; the relay gives the name
    (record,) = [r for r in upstream.requests if r.path == "/apps/run"]
    assert record.method == "POST"
    assert record.authorization == f"Bearer {SECRET}"
    assert record.idempotency_key


def test_proxy_passes_a_browser_idempotency_key_on(client: Client, serve: Callable[..., Served]) -> None:
    served = serve(client)
    config = {"app": "infsh/echo", "input": {"n": 1}}
    first = post_json(served.base + "/proxy", config, {"Idempotency-Key": "page-run-1"}).json()["data"]
    again = post_json(served.base + "/proxy", config, {"Idempotency-Key": "page-run-1"}).json()["data"]
    other = post_json(served.base + "/proxy", config).json()["data"]
    assert first["id"] == again["id"] != other["id"]


def test_stream_relays_unnamed_events_with_the_same_ids_and_status_names(
    client: Client, serve: Callable[..., Served]
) -> None:
    served = serve(client)
    task_id = run(served, flux())
    reader = stream(served.base, task_id).wait()
    assert reader.error is None and reader.status == 200
    headers = reader.response_headers
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["cache-control"] == "no-store"
    assert headers["x-accel-buffering"] == "no"
    assert b"event:" not in reader.raw
    assert reader.blocks[0].fields == [("retry", "1000")]
    direct = list(client.tasks.stream(task_id))
    relayed = reader.events
    assert [b.id for b in relayed] == [u.event_id for u in direct] == list(range(1, len(direct) + 1))
    assert [b.data["status"] for b in relayed] == [u.status.value for u in direct]
    assert all(b.data["status"] in STATUS_NAMES for b in relayed)
    assert relayed[0].data["status"] == "received" and relayed[-1].data["status"] == "completed"
    assert [line for b in relayed for line in b.data["logs"]] == [line for u in direct for line in u.logs]
    assert "/files/" in relayed[-1].data["output"]["image"]  # the PNG's URL on the upstream
    assert relayed[-2].data["progress"] == {"current": 8, "total": 8}
    assert served.relay.open_streams == 0


def test_last_event_id_resumes_after_that_event(client: Client, serve: Callable[..., Served]) -> None:
    served = serve(client)
    task_id = run(served, flux())
    total = len(list(client.tasks.stream(task_id)))
    reader = stream(served.base, task_id, {"Last-Event-ID": "5"}).wait()
    assert [b.id for b in reader.events] == list(range(6, total + 1))


def test_a_browser_that_already_has_the_terminal_event_gets_204(client: Client, serve: Callable[..., Served]) -> None:
    served = serve(client)
    task_id = run(served, flux())
    total = len(list(client.tasks.stream(task_id)))
    answer = request("GET", f"{served.base}/stream?taskId={task_id}", headers={"Last-Event-ID": str(total)})
    assert answer.status == 204 and answer.body == b""  # EventSource stops reconnecting on 204


def test_unknown_task_is_404(client: Client, serve: Callable[..., Served]) -> None:
    served = serve(client)
    assert request("GET", served.base + "/stream?taskId=tsk_nope").status == 404
    answer = request("POST", served.base + "/cancel?taskId=tsk_nope")
    assert answer.status == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 404


def test_cancel_ends_the_task_as_cancelled(client: Client, serve: Callable[..., Served]) -> None:
    served = serve(client)
    task_id = run(served, {"app": "infsh/sleep", "input": {"seconds": 60}})
    reader = stream(served.base, task_id)
    assert wait_until(lambda: any(b.data["status"] == "running" for b in reader.events))
    answer = request("POST", f"{served.base}/cancel?taskId={task_id}")
    assert answer.status == 200
    assert answer.json()["data"]["status"] == "cancelled"
    reader.wait()
    assert reader.events[-1].data["status"] == "cancelled"
    assert client.tasks.get(task_id).status is TaskStatus.CANCELLED
    again = request("POST", f"{served.base}/cancel?taskId={task_id}")
    assert again.status == 409


def test_heartbeats_reach_the_browser_while_the_task_is_quiet(
    quiet_upstream: LocalServer, serve: Callable[..., Served]
) -> None:
    with make_client(quiet_upstream) as quiet:
        served = serve(quiet, heartbeat=0.2)
        task_id = run(served, {"app": "infsh/sleep", "input": {"seconds": 5}})
        reader = stream(served.base, task_id)
        time.sleep(1.3)
        pings = [b for b in reader.blocks if b.comments == ["ping"]]
        reader.close()
        assert 4 <= len(pings) <= 8
        gaps = [b.at - a.at for a, b in zip(pings, pings[1:])]
        assert all(0.1 < gap < 0.6 for gap in gaps), gaps


def test_upstream_drops_are_resumed_invisibly(client: Client, serve: Callable[..., Served]) -> None:
    served = serve(client)
    faults = [{"kind": "reset", "after": 3}, {"kind": "torn", "after": 4}, {"kind": "close", "after": 2}]
    task_id = run(served, flux(_faults=faults))
    reader = stream(served.base, task_id).wait()
    total = len(list(client.tasks.stream(task_id)))
    assert [b.id for b in reader.events] == list(range(1, total + 1))
    assert reader.events[-1].data["status"] == "completed"


def test_drop_after_ends_each_response_and_last_event_id_picks_up(client: Client, serve: Callable[..., Served]) -> None:
    served = serve(client, drop_after=4)
    task_id = run(served, flux())
    seen: list[int] = []
    for _ in range(20):
        headers = {"Last-Event-ID": str(seen[-1])} if seen else {}
        answer = request("GET", f"{served.base}/stream?taskId={task_id}", headers=headers)
        if answer.status == 204:
            break
        ids = [int(line[4:]) for line in answer.body.decode().split("\n") if line.startswith("id: ")]
        assert len(ids) <= 4
        seen.extend(ids)
    total = len(list(client.tasks.stream(task_id)))
    assert seen == list(range(1, total + 1))


def test_events_are_relayed_one_by_one_as_the_upstream_sends_them(
    upstream: LocalServer, client: Client, serve: Callable[..., Served]
) -> None:
    """No buffering under waitress: each event reaches the browser before the upstream sends the next."""
    served = serve(client)
    task_id = run(served, {"app": "infsh/sleep", "input": {"seconds": 12}})  # a tick every 0.1 s
    direct = SSEReader(f"{upstream.url}/tasks/{task_id}/stream", {"Authorization": f"Bearer {SECRET}"}).start()
    relayed = stream(served.base, task_id)
    direct.wait()
    relayed.wait()
    arrived = {b.id: b.at for b in relayed.events}
    sent = {b.id: b.at for b in direct.events}
    ids = sorted(sent)
    assert sorted(arrived) == ids and len(ids) >= 12
    # only the events that the relay saw live (its stream may open after the first ones were sent)
    live = [i for i in ids if sent[i] > relayed.blocks[0].at + 0.05]
    assert len(live) >= 8
    added = [arrived[i] - sent[i] for i in live]
    for current, following in zip(live, live[1:]):
        if sent[following] - sent[current] > 0.05:  # the last tick and "completed" go out together
            assert arrived[current] < sent[following], (current, added)
    assert statistics.median(added) < 0.05, added
    assert arrived[live[-1]] - arrived[live[0]] > 0.07 * (len(live) - 1)  # spread out, not one batch


def test_wrong_methods_and_routes(client: Client, serve: Callable[..., Served]) -> None:
    served = serve(client)
    wrong = request("GET", served.base + "/proxy")
    assert wrong.status == 405 and wrong.headers["allow"] == "POST"
    assert request("POST", served.base + "/stream?taskId=tsk_x").status == 405
    assert request("GET", served.base + "/nope").status == 404
    assert request("GET", served.base).status == 404
    page = request("GET", served.url + "/")
    assert page.status == 200 and b"new EventSource('/api/inference/stream?taskId=' + taskId)" in page.body
