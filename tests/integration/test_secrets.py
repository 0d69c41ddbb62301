"""The API key never appears in a log line, a repr, an exception message or a URL."""

from __future__ import annotations

import logging

import pytest

import inferencesh
from inferencesh import Client, inference
from inferencesh.server import LocalServer

from .conftest import SECRET, flux


def test_repr_and_str_hide_the_key(client: Client) -> None:
    assert SECRET not in repr(client) and SECRET not in str(client)
    assert SECRET not in repr(client.settings)
    with client.run(flux(), stream=True) as stream:
        assert SECRET not in repr(stream)
        list(stream)


def test_logs_urls_and_errors_never_hold_the_key(caplog: pytest.LogCaptureFixture) -> None:
    messages: list[str] = []
    with LocalServer(api_key="the-right-one", speed=200, retry_ms=10) as server, caplog.at_level(logging.DEBUG):
        client = inference(api_key=SECRET, base_url=server.url, backoff_initial=0.01, max_reconnects=1)
        for config in (
            {"app": "infsh/echo", "input": {}},
            {"app": "nobody/nothing", "input": {}},
        ):
            with pytest.raises(inferencesh.APIError) as caught:
                client.run(config)
            messages += [str(caught.value), repr(caught.value), caught.value.detail]
        with pytest.raises(inferencesh.AuthenticationError) as lost:
            list(client.tasks.stream("tsk_x"))
        messages.append(str(lost.value))
        paths = [record.path for record in server.requests]
    gone = inference(api_key=SECRET, base_url="http://127.0.0.1:9", max_retries=0, connect_timeout=1)
    with pytest.raises(inferencesh.ConnectionLost) as refused:
        gone.run({"app": "infsh/echo", "input": {}})
    messages += [str(refused.value), repr(refused.value)]
    assert caplog.records, "the debug log should have said something"
    for text in [*messages, *paths, caplog.text]:
        assert SECRET not in text
        assert "Bearer" not in text or "Bearer ***" in text


def test_environment_fallbacks(monkeypatch: pytest.MonkeyPatch, server: LocalServer) -> None:
    monkeypatch.setenv("INFERENCE_API_KEY", SECRET)
    monkeypatch.setenv("INFERENCE_BASE_URL", server.url + "/")
    client = inference()
    assert client.base_url == server.url
    assert client.run({"app": "infsh/echo", "input": {"x": 1}}).output == {"x": 1}
    assert server.requests[-1].authorization == f"Bearer {SECRET}"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"base_url": "ftp://example.com"}, "http"),
        ({"base_url": "http://user:pw@example.com"}, "credentials"),
        ({"api_key": ""}, "api_key"),
        ({"max_reconnects": -1}, "max_reconnects"),
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"no_such_option": 1}, "no_such_option"),
    ],
)
def test_bad_client_arguments_are_usage_errors(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(inferencesh.UsageError, match=fragment):
        inference(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "config",
    [None, [], {"input": {}}, {"app": ""}, {"app": "infsh/echo", "input": []}, {"app": 3}],
)
def test_bad_configs_are_usage_errors(client: Client, config: object) -> None:
    with pytest.raises(inferencesh.UsageError):
        client.run(config)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", None, 5])
def test_bad_task_ids_are_usage_errors(client: Client, bad: object) -> None:
    with pytest.raises(inferencesh.UsageError):
        client.tasks.get(bad)  # type: ignore[arg-type]


def test_task_ids_are_url_quoted(server: LocalServer, client: Client) -> None:
    with pytest.raises(inferencesh.NotFoundError):
        client.tasks.get("..?x=1#y%2F")
    # The server saw one (decoded) path segment under /tasks/, its query and fragment characters quoted.
    assert server.requests[-1].method == "GET"
    assert server.requests[-1].path == "/tasks/..?x=1#y%2F"


@pytest.mark.parametrize("bad", ["a/b", "../../etc/passwd", "..", ".", "a b", "tsk_1\n", "x\\y"])
def test_what_cannot_be_an_id_is_refused_before_anything_is_sent(
    server: LocalServer, client: Client, bad: str
) -> None:
    server.clear_requests()
    for call in (client.tasks.get, client.tasks.cancel, client.tasks.stream):
        with pytest.raises(inferencesh.UsageError, match="not an id"):
            call(bad)
    with pytest.raises(inferencesh.UsageError):
        client.agent("infsh/assistant@latest").submit_tool_result(bad, "x")
    assert server.requests == []
