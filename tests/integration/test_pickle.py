"""A Client pickles to its configuration, never to its key (unless asked); errors pickle with their facts."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import pytest

import inferencesh
from inferencesh import Client, TaskStatus, inference
from inferencesh.server import LocalServer

from .conftest import SECRET


@pytest.fixture(scope="module")
def locked() -> Iterator[LocalServer]:
    """A server that requires the key."""
    with LocalServer(speed=200, api_key=SECRET) as running:
        yield running


def test_a_pickle_never_holds_the_key(locked: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INFERENCE_API_KEY", raising=False)
    client = inference(api_key=SECRET, base_url=locked.url, heartbeat_interval=3, pool_maxsize=7, max_reconnects=2)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert SECRET.encode() not in pickle.dumps(client, protocol=protocol)
    copy = pickle.loads(pickle.dumps(client))
    assert copy.settings == client.settings  # base URL, timeouts, retry settings
    assert "set" not in repr(copy)
    with pytest.raises(inferencesh.AuthenticationError):  # no key here, so none was sent
        copy.run({"app": "infsh/echo", "input": {}})


def test_the_copy_takes_the_key_from_its_own_environment(locked: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    data = pickle.dumps(inference(api_key=SECRET, base_url=locked.url))
    monkeypatch.setenv("INFERENCE_API_KEY", SECRET)
    monkeypatch.setenv("INFERENCE_BASE_URL", "http://127.0.0.1:9")  # the pickled base URL wins
    with pickle.loads(data) as copy:
        assert copy.base_url == locked.url
        assert copy.run({"app": "infsh/echo", "input": {"x": 1}}).output == {"x": 1}
        assert copy.tasks is not None and copy.run_many([{"app": "infsh/echo"}])[0].status is TaskStatus.COMPLETED


def test_pickle_api_key_opts_in(locked: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INFERENCE_API_KEY", raising=False)
    client = Client(SECRET, locked.url, pickle_api_key=True)
    data = pickle.dumps(client)
    assert SECRET.encode() in data
    with pickle.loads(data) as copy:
        assert copy.run({"app": "infsh/echo", "input": {}}).status is TaskStatus.COMPLETED
        assert SECRET.encode() in pickle.dumps(copy)  # the choice travels with it


def test_errors_pickle_with_their_facts(locked: LocalServer) -> None:
    with inference(api_key=SECRET, base_url=locked.url) as client:
        failures = client.run_many(
            [{"app": "infsh/fail", "input": {"message": "no GPU"}}, {"app": "nobody/nothing"}], return_exceptions=True
        )
    failed, missing = (pickle.loads(pickle.dumps(error)) for error in failures)
    assert isinstance(failed, inferencesh.TaskFailed) and failed.error == "no GPU" and failed.task_id.startswith("tsk")
    assert str(failed) == str(failures[0])
    assert isinstance(missing, inferencesh.NotFoundError) and missing.status_code == 404
    timeout = pickle.loads(pickle.dumps(inferencesh.StreamTimeout(2.5, "tsk_1")))
    assert isinstance(timeout, TimeoutError) and timeout.timeout == 2.5 and timeout.task_id == "tsk_1"
    lost = pickle.loads(pickle.dumps(inferencesh.ConnectionLost("reset", task_id="tsk_2", last_event_id=7)))
    assert lost.last_event_id == 7 and lost.reason == "reset"
