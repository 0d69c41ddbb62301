"""What a new user hits: contradictory options, how a stream ended, a client without a key."""

from __future__ import annotations

import logging

import pytest

import inferencesh
from inferencesh import Client, TaskCancelled, TaskFailed, UsageError, inference
from inferencesh.server import LocalServer

from .conftest import flux


@pytest.mark.parametrize("options", [{"stream": True, "wait": False}, {"progress": True, "wait": False}])
def test_contradictory_run_options_are_usage_errors(
    server: LocalServer, client: Client, options: dict[str, bool]
) -> None:
    server.clear_requests()
    with pytest.raises(UsageError, match="wait=False"):
        client.run(flux(), **options)  # type: ignore[call-overload]
    assert server.requests == []  # refused before anything was sent


def test_raise_for_status_says_how_a_stream_ended(client: Client) -> None:
    completed = client.run(flux(), stream=True)
    with pytest.raises(UsageError, match="not reached a terminal status"):
        completed.raise_for_status()  # nothing read yet
    list(completed)
    assert completed.raise_for_status() is completed

    failed = client.run({"app": "infsh/fail", "input": {"message": "boom"}}, stream=True)
    list(failed)
    with pytest.raises(TaskFailed, match="boom"):
        failed.raise_for_status()

    sleeper = client.run({"app": "infsh/sleep", "input": {"seconds": 600}}, stream=True)
    asked = False
    for update in sleeper:
        if update.status == "running" and not asked:
            sleeper.cancel_task()  # once: the cancel's own updates follow
            asked = True
    with pytest.raises(TaskCancelled):
        sleeper.raise_for_status()

    left = client.run({"app": "infsh/sleep", "input": {"seconds": 600}}, stream=True)
    for _ in left:
        break
    with pytest.raises(UsageError, match="last status seen is"):
        left.raise_for_status()
    client.tasks.cancel(left.task_id)


def test_a_client_without_a_key_warns_once_at_first_use(
    server: LocalServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INFERENCE_API_KEY", raising=False)
    with caplog.at_level(logging.WARNING, logger="inferencesh"):
        keyless = inference(base_url=server.url)
        assert not caplog.records  # making the client is not a use
        keyless.run({"app": "infsh/echo", "input": {}})
        keyless.run({"app": "infsh/echo", "input": {}})
    warnings = [r for r in caplog.records if "no API key" in r.getMessage()]
    assert len(warnings) == 1


def test_a_keyed_client_never_warns(server: LocalServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="inferencesh"):
        inference(api_key="inf_some_key_123456", base_url=server.url).run({"app": "infsh/echo", "input": {}})
    assert not [r for r in caplog.records if "API key" in r.getMessage()]
    assert all("inf_some_key_123456" not in r.getMessage() for r in caplog.records)


def test_errors_module_exports() -> None:
    assert issubclass(inferencesh.TaskRejected, inferencesh.TaskFailed)
    assert issubclass(inferencesh.RequirementsNotMet, inferencesh.APIError)
