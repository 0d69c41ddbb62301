"""Loss-free resume and retries: every server fault mode, seen by the SDK's user."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import inferencesh
from inferencesh import Client, inference
from inferencesh.server import LocalServer

from .conftest import SECRET, flux


def _stream_paths(server: LocalServer, task_id: str) -> list[Any]:
    return [r for r in server.requests if r.path == f"/tasks/{task_id}/stream"]


def _image(output: Any) -> bytes:
    import requests

    answer = requests.get(output["image"], timeout=10)
    assert answer.status_code == 200
    return answer.content


def _assert_exact(updates: list[inferencesh.TaskUpdate]) -> None:
    assert [u.event_id for u in updates] == list(range(1, len(updates) + 1))
    assert updates[-1].is_terminal
    assert sum(u.is_terminal for u in updates) == 1


@pytest.mark.parametrize("kind", ["close", "reset", "cut", "torn"])
@pytest.mark.parametrize("after", [1, 3, 8])
def test_every_drop_is_resumed_without_loss_or_repeat(
    server: LocalServer, client: Client, kind: str, after: int
) -> None:
    reference = list(client.run(flux("same"), stream=True))
    with client.run(flux("same", faults=[{"kind": kind, "after": after}]), stream=True) as stream:
        updates = list(stream)
    _assert_exact(updates)
    assert [(u.status, u.logs, u.progress) for u in updates] == [(u.status, u.logs, u.progress) for u in reference]
    # Each task's PNG has a URL of its own on the server; the same prompt gives the same bytes.
    assert _image(updates[-1].output) == _image(reference[-1].output)
    requests = _stream_paths(server, stream.task_id)
    assert len(requests) >= 2
    assert requests[0].last_event_id is None
    # Each reconnect says which event it had last; the ids only ever grow.
    ids = [int(r.last_event_id) for r in requests[1:] if r.last_event_id is not None]
    assert ids == sorted(ids) and all(0 < i <= after for i in ids)


def test_many_drops_in_one_stream(client: Client) -> None:
    faults = [{"kind": kind, "after": 2} for kind in ("close", "cut", "torn", "reset", "close")]
    _assert_exact(list(client.run(flux(faults=faults), stream=True)))


def test_replay_overlap_is_deduplicated(server: LocalServer, client: Client) -> None:
    faults = [{"kind": "close", "after": 5}, {"kind": "overlap", "back": 4}]
    with client.run(flux(faults=faults), stream=True) as stream:
        updates = list(stream)
    _assert_exact(updates)
    assert [r.last_event_id for r in _stream_paths(server, stream.task_id)] == [None, "5"]


def test_stall_beyond_the_idle_limit_reconnects(server: LocalServer, client: Client) -> None:
    # The client's idle limit is 2 × 0.5 s; the stall lasts 3 s.
    faults = [{"kind": "stall", "after": 4, "seconds": 3}]
    with client.run(flux(faults=faults), stream=True, timeout=20) as stream:
        updates = list(stream)
    _assert_exact(updates)
    assert [r.last_event_id for r in _stream_paths(server, stream.task_id)][:2] == [None, "4"]


@pytest.mark.parametrize("code", [503, 429, 500, 502])
def test_error_statuses_on_reconnect_are_retried(server: LocalServer, client: Client, code: int) -> None:
    faults = [{"kind": "close", "after": 3}, {"kind": "status", "code": code, "retry_after": 0.05, "times": 2}]
    with client.run(flux(faults=faults), stream=True) as stream:
        updates = list(stream)
    _assert_exact(updates)
    statuses = [r.status for r in _stream_paths(server, stream.task_id)]
    assert statuses.count(code) == 2 and statuses[-1] == 200


def test_retry_after_is_honoured(server: LocalServer, client: Client) -> None:
    import time

    faults = [{"kind": "status", "code": 429, "retry_after": 0.6, "times": 1}]
    started = time.monotonic()
    _assert_exact(list(client.run(flux(faults=faults), stream=True)))
    assert time.monotonic() - started >= 0.5


def test_reconnects_exhausted_raise_connection_lost() -> None:
    seen: list[int] = []
    gone = LocalServer(speed=200, retry_ms=10)
    gone.start()
    client = inference(base_url=gone.url, backoff_initial=0.01, backoff_max=0.05, max_reconnects=3)
    with pytest.raises(inferencesh.ConnectionLost) as caught:
        for update in client.run({"app": "infsh/sleep", "input": {"seconds": 30}}, stream=True):
            seen.append(update.event_id)
            if update.event_id == 3:
                gone.stop()  # every reconnect is now refused
    # Whatever was already buffered was delivered; then every reconnect was refused.
    assert seen == list(range(1, len(seen) + 1)) and len(seen) >= 3
    assert caught.value.last_event_id == seen[-1]
    assert caught.value.task_id is not None and caught.value.task_id in str(caught.value)


def test_503_forever_on_reconnect_exhausts_the_attempts(server: LocalServer, client: Client) -> None:
    faults = [{"kind": "status", "code": 503, "times": -1}]
    with pytest.raises(inferencesh.ConnectionLost) as caught:
        list(client.run(flux(faults=faults), stream=True))
    assert caught.value.last_event_id is None
    # The first attempt and max_reconnects (5) more, then no further request.
    assert len(_stream_paths(server, caught.value.task_id or "")) == 6


def test_the_reconnect_count_resets_when_an_event_arrives(client: Client) -> None:
    faults = [{"kind": "close", "after": 1, "times": 12}]
    _assert_exact(list(client.run(flux(faults=faults), stream=True)))


def test_lost_run_answer_does_not_start_a_second_task(server: LocalServer, client: Client) -> None:
    before = {r.idempotency_key for r in server.requests if r.path == "/apps/run"}
    task = client.run({"app": "infsh/echo", "input": {"x": 1, "_faults": [{"kind": "run_drop", "times": 2}]}})
    assert task.output == {"x": 1}
    runs = [r for r in server.requests if r.path == "/apps/run" and r.idempotency_key not in before]
    assert [r.status for r in runs] == [503, 503, 200]
    assert len({r.idempotency_key for r in runs}) == 1


def test_every_run_gets_a_fresh_idempotency_key(server: LocalServer, client: Client) -> None:
    client.run({"app": "infsh/echo", "input": {}}, wait=False)
    client.run({"app": "infsh/echo", "input": {}}, wait=False)
    keys = [r.idempotency_key for r in server.requests if r.path == "/apps/run"][-2:]
    assert keys[0] and keys[1] and keys[0] != keys[1]


def test_run_retries_429_with_retry_after(server: LocalServer, client: Client) -> None:
    task = client.run(
        {"app": "infsh/echo", "input": {"_faults": [{"kind": "run_status", "code": 429, "retry_after": 0.05}]}}
    )
    assert task.status == "completed"


def test_logging_tells_of_reconnects(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        list(client.run(flux(faults=[{"kind": "reset", "after": 2}]), stream=True))
    text = caplog.text
    assert "reconnecting" in text or "retrying" in text
    assert SECRET not in text


@pytest.mark.parametrize(
    ("config", "error", "status"),
    [
        ({"app": "nobody/nothing", "input": {}}, inferencesh.NotFoundError, 404),
        ({"app": "infsh/echo", "input": {"_faults": "nonsense"}}, inferencesh.APIError, 422),
    ],
)
def test_error_answers_are_typed_and_not_retried(
    server: LocalServer, client: Client, config: dict[str, Any], error: type[Exception], status: int
) -> None:
    count = len(server.requests)
    with pytest.raises(error) as caught:
        client.run(config)
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert caught.value.detail  # type: ignore[attr-defined]
    assert len(server.requests) == count + 1


def test_unknown_task_is_not_found(client: Client) -> None:
    with pytest.raises(inferencesh.NotFoundError):
        client.tasks.get("tsk_does_not_exist")
    with pytest.raises(inferencesh.NotFoundError):
        list(client.tasks.stream("tsk_does_not_exist"))


def test_a_required_key_is_checked() -> None:
    with LocalServer(api_key="right", speed=200) as locked:
        with pytest.raises(inferencesh.AuthenticationError) as caught:
            inference(api_key="wrong", base_url=locked.url).run({"app": "infsh/echo", "input": {}})
        assert caught.value.status_code == 401
        task = inference(api_key="right", base_url=locked.url).run({"app": "infsh/echo", "input": {"a": 1}})
        assert task.output == {"a": 1}
        assert all(r.authorization == "Bearer right" for r in locked.requests if r.status == 200)
        assert all(r.user_agent == f"inferencesh-python/{inferencesh.__version__}" for r in locked.requests)


def test_malformed_event_is_a_protocol_error_without_resume(server: LocalServer, client: Client) -> None:
    seen: list[int] = []
    with pytest.raises(inferencesh.ProtocolError) as caught:
        for update in client.run(flux(faults=[{"kind": "malformed", "after": 2}]), stream=True):
            seen.append(update.event_id)
    assert seen == [1, 2]
    assert caught.value.event_id == "3"
