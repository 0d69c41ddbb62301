"""The official ``@inferencesh/sdk`` 0.6.54 in Node, ``proxyUrl`` at our relay, ``LocalServer(dialect="hosted")``
behind it: runs and waits, follows with ``onUpdate``, cancels, and runs an agent turn."""

from __future__ import annotations

from typing import Any, Callable

import requests

from inferencesh.server import LocalServer
from tests.helpers import wait_until

from .conftest import SECRET, Proxied

Run = Callable[[str], dict[str, dict[str, Any]]]


def upstream_task(server: LocalServer, task_id: str) -> dict[str, Any]:
    """The task as the upstream has it (hosted DTO with its status history in ``events``)."""
    answer = requests.get(
        f"{server.url}/tasks/{task_id}", headers={"Authorization": f"Bearer {SECRET}", "X-API-Version": "2"}, timeout=10
    )
    answer.raise_for_status()
    task: dict[str, Any] = answer.json()
    return task


def proxied_requests(server: LocalServer) -> list[Any]:
    return [record for record in server.requests if record.user_agent and "inferencesh-relay" in record.user_agent]


def test_run_waits_for_the_final_task(run_sdk: Run, proxied: Proxied) -> None:
    report = run_sdk("run")["run"]
    task = upstream_task(proxied.upstream, report["id"])
    assert report["status"] == task["status"] == 10  # completed, the hosted code
    assert report["output"] == task["output"]
    records = proxied_requests(proxied.upstream)
    assert [(r.method, r.path.split("/tsk_")[0]) for r in records][:2] == [("POST", "/apps/run"), ("GET", "/tasks")]
    assert all(r.authorization == f"Bearer {SECRET}" for r in records)
    assert any(r.accept == "application/x-ndjson" for r in records)  # the task stream, as the SDK asked
    assert proxied.relay.open_forwards == 0


def test_on_update_sees_the_statuses_in_order_and_the_output(run_sdk: Run, proxied: Proxied) -> None:
    report = run_sdk("follow")["follow"]
    task = upstream_task(proxied.upstream, report["id"])
    history = [event["status"] for event in task["events"]]
    seen = report["statuses"]
    # What the SDK saw is the server's history from the moment its stream opened, nothing skipped after.
    assert seen == history[history.index(seen[0]) :], (seen, history)
    assert seen[-1] == 10 and 7 in seen and len(seen) >= 4
    assert report["output"] == task["output"]
    assert report["updates"] >= 1


def test_cancel_stops_the_task_on_the_server(run_sdk: Run, proxied: Proxied) -> None:
    report = run_sdk("cancel")["cancel"]
    task = upstream_task(proxied.upstream, report["id"])
    assert task["status"] == report["status"] == 12  # cancelled
    assert [event["status"] for event in task["events"]][-2:] == [8, 12]  # through cancelling
    cancels = [r for r in proxied_requests(proxied.upstream) if r.path.endswith("/cancel")]
    assert [(r.method, r.path) for r in cancels] == [("POST", f"/tasks/{report['id']}/cancel")]


def test_an_agent_turn_streams_to_its_answer(run_sdk: Run, proxied: Proxied) -> None:
    report = run_sdk("agent")["agent"]
    assert report["text"] == 'You said "hello there". This is turn 1 of our chat.'
    chat = requests.get(
        f"{proxied.upstream.url}/chats/{report['chat']}",
        headers={"Authorization": f"Bearer {SECRET}", "X-API-Version": "2"},
        timeout=10,
    ).json()
    assert chat["id"] == report["chat"]
    paths = [r.path for r in proxied_requests(proxied.upstream)]
    assert "/agents/run" in paths and f"/chats/{report['chat']}/stream" in paths
    # The SDK stops reading the chat stream once the turn is over; the relay lets go of the upstream.
    assert wait_until(lambda: proxied.relay.open_forwards == 0, timeout=2.0)


def test_the_key_reaches_no_answer_the_browser_gets(run_sdk: Run, proxied: Proxied) -> None:
    """All four in one process; ``run_node`` checks that the key is in nothing Node printed."""
    reports = run_sdk("all")
    assert set(reports) == {"run", "follow", "cancel", "agent"}
    assert SECRET not in repr(reports)
