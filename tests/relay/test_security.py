"""The relay is not an open proxy: one upstream, checked inputs, capped bodies, no CORS, no key."""

from __future__ import annotations

import http.client
import json
import logging
from typing import Callable
from urllib.parse import quote, urlsplit

import pytest

from inferencesh import Client, UsageError
from inferencesh.relay import Relay
from inferencesh.server import LocalServer

from .conftest import Served, make_client
from .helpers import SECRET, Answer, flux, post_json, request, stream

BAD_TASK_IDS = [
    "../tasks/x",
    "..",
    "tsk_1/../../apps/run",
    "http://evil.example/x",
    "//evil.example/x",
    "evil.example",
    "127.0.0.1:8080",
    "user@evil.example",
    "tsk_1\r\nHost: evil.example",
    "tsk_1\n",
    "tsk_1%2F..",
    "tsk 1",
    "",
    "x" * 129,
]
BAD_APPS = [
    "../infsh/echo",
    "infsh/../../tasks",
    "infsh/..",
    "http://evil.example/app",
    "https://evil.example",
    "//evil.example/app",
    "evil.example/app",
    "127.0.0.1/app",
    "localhost:8080/app",
    "infsh/echo\r\nHost: evil.example",
    "infsh/echo\n",
    "infsh/echo/extra",
    "infsh",
    "",
    42,
    None,
]


def upstream_calls(server: LocalServer) -> int:
    return len(server.requests)


@pytest.mark.parametrize("task_id", BAD_TASK_IDS)
def test_bad_task_ids_are_refused_and_never_forwarded(
    upstream: LocalServer, client: Client, serve: Callable[..., Served], task_id: str
) -> None:
    served = serve(client)
    before = upstream_calls(upstream)
    query = "taskId=" + quote(task_id, safe="")
    for method, route in (("GET", "stream"), ("POST", "cancel")):
        answer = request(method, f"{served.base}/{route}?{query}")
        assert answer.status == 400, (route, answer.body)
        assert answer.headers["content-type"] == "application/problem+json"
        assert task_id.encode() not in answer.body or task_id == ""
    assert upstream_calls(upstream) == before


def test_a_missing_or_repeated_task_id_is_400(client: Client, serve: Callable[..., Served]) -> None:
    served = serve(client)
    assert request("GET", served.base + "/stream").status == 400
    assert request("GET", served.base + "/stream?taskId=a&taskId=b").status == 400


def test_a_bad_last_event_id_is_400(client: Client, serve: Callable[..., Served]) -> None:
    served = serve(client)
    for value in ("-1", "abc", "1.5", "9" * 30):
        answer = request("GET", served.base + "/stream?taskId=tsk_x", headers={"Last-Event-ID": value})
        assert answer.status == 400, value


@pytest.mark.parametrize("app", BAD_APPS)
def test_bad_apps_are_refused_and_never_forwarded(
    upstream: LocalServer, client: Client, serve: Callable[..., Served], app: object
) -> None:
    served = serve(client)
    before = upstream_calls(upstream)
    answer = post_json(served.base + "/proxy", {"app": app, "input": {}})
    assert answer.status == 400, answer.body
    assert upstream_calls(upstream) == before


def test_bad_bodies_are_refused(upstream: LocalServer, client: Client, serve: Callable[..., Served]) -> None:
    served = serve(client)
    before = upstream_calls(upstream)
    for body in (b"not json", b"[1, 2]", b'{"app": "infsh/echo", "input": [1]}', b'{"app": "infsh/echo", "setup": 1}'):
        answer = request("POST", served.base + "/proxy", body, {"Content-Type": "application/json"})
        assert answer.status == 400, body
    form = request(
        "POST", served.base + "/proxy", b"app=infsh/echo", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status == 415  # a cross-site <form> cannot start runs
    key = post_json(served.base + "/proxy", {"app": "infsh/echo"}, {"Idempotency-Key": "a b\tc"})
    assert key.status == 400
    assert upstream_calls(upstream) == before


def test_a_target_url_header_naming_another_host_is_refused(
    upstream: LocalServer, client: Client, serve: Callable[..., Served]
) -> None:
    """The JavaScript SDK names its target in a header (tests/relay/test_forward_security.py has every
    trick); this relay calls its one upstream or nothing, whatever is sent."""
    with LocalServer() as evil:
        served = serve(client)
        before = upstream_calls(upstream)
        headers = {"X-Inf-Target-Url": evil.url + "/apps/run", "X-Forwarded-Host": urlsplit(evil.url).netloc}
        answer = post_json(served.base + "/proxy", {"app": "infsh/echo", "input": {}}, headers)
        assert answer.status == 412 and "error" in answer.json() and "errors" not in answer.json()
        assert evil.requests == []
        assert upstream_calls(upstream) == before


def test_the_allow_list(client: Client, serve: Callable[..., Served]) -> None:
    served = serve(client, allowed_apps=["infsh/echo", "infsh/flux-schnell@1.0"])
    assert post_json(served.base + "/proxy", {"app": "infsh/echo", "input": {}}).status == 200
    assert post_json(served.base + "/proxy", {"app": "infsh/echo@latest", "input": {}}).status in (200, 404)
    refused = post_json(served.base + "/proxy", flux())
    assert refused.status == 403
    assert post_json(served.base + "/proxy", {"app": "infsh/sleep", "input": {"seconds": 1}}).status == 403
    with pytest.raises(UsageError):
        Relay(client=client, allowed_apps=["http://evil.example/x"])
    with pytest.raises(UsageError):
        Relay(client=client, allowed_apps="infsh/echo")


def chunked_post(url: str, body: bytes) -> Answer:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.putrequest("POST", parts.path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for start in range(0, len(body), 65536):
            piece = body[start : start + 65536]
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def test_bodies_are_capped_at_1_mib_by_default(
    upstream: LocalServer, client: Client, serve: Callable[..., Served]
) -> None:
    served = serve(client)
    before = upstream_calls(upstream)
    big = json.dumps({"app": "infsh/echo", "input": {"blob": "x" * (1024 * 1024)}}).encode()
    assert post_json(served.base + "/proxy", {"app": "infsh/echo", "input": {"blob": "x" * 1000}}).status == 200
    answer = request("POST", served.base + "/proxy", big, {"Content-Type": "application/json"})
    assert answer.status == 413
    assert answer.json()["status"] == 413
    assert chunked_post(served.base + "/proxy", big).status == 413
    assert upstream_calls(upstream) == before + 1


def test_the_body_cap_is_configurable(client: Client, serve: Callable[..., Served]) -> None:
    served = serve(client, max_body_bytes=200)
    small = {"app": "infsh/echo", "input": {"blob": "x" * 100}}
    large = {"app": "infsh/echo", "input": {"blob": "x" * 300}}
    assert post_json(served.base + "/proxy", small).status == 200
    assert post_json(served.base + "/proxy", large).status == 413
    assert chunked_post(served.base + "/proxy", json.dumps(large).encode()).status == 413
    assert chunked_post(served.base + "/proxy", json.dumps(small).encode()).status == 200


def cors_headers(answer: Answer) -> dict[str, str]:
    return {k: v for k, v in answer.headers.items() if k.startswith("access-control-")}


def test_no_cors_headers_unless_configured(client: Client, serve: Callable[..., Served]) -> None:
    served = serve(client)
    origin = {"Origin": "https://elsewhere.example"}
    answer = post_json(served.base + "/proxy", {"app": "infsh/echo", "input": {}}, origin)
    assert answer.status == 200 and cors_headers(answer) == {}
    task_id = answer.json()["data"]["id"]
    reader = stream(served.base, task_id, origin).wait()
    assert reader.status == 200 and not any(k.startswith("access-control-") for k in reader.response_headers)
    preflight = request("OPTIONS", served.base + "/proxy", headers={**origin, "Access-Control-Request-Method": "POST"})
    assert preflight.status == 405 and cors_headers(preflight) == {}
    assert cors_headers(request("GET", served.base + "/stream?taskId=../x", headers=origin)) == {}


def test_cors_for_configured_origins_only(client: Client, serve: Callable[..., Served]) -> None:
    served = serve(client, cors_origins=["https://app.example"])
    good = {"Origin": "https://app.example"}
    answer = post_json(served.base + "/proxy", {"app": "infsh/echo", "input": {}}, good)
    assert cors_headers(answer) == {"access-control-allow-origin": "https://app.example"}
    assert answer.headers["vary"] == "Origin"
    reader = stream(served.base, answer.json()["data"]["id"], good).wait()
    assert reader.response_headers["access-control-allow-origin"] == "https://app.example"
    other = post_json(served.base + "/proxy", {"app": "infsh/echo", "input": {}}, {"Origin": "https://evil.example"})
    assert cors_headers(other) == {}
    preflight = request(
        "OPTIONS",
        served.base + "/proxy",
        headers={**good, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
    )
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "Content-Type" in preflight.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in preflight.headers
    denied = request("OPTIONS", served.base + "/proxy", headers={"Origin": "https://evil.example"})
    assert denied.status == 403 and cors_headers(denied) == {}


def test_the_key_never_reaches_the_browser_or_the_logs(
    upstream: LocalServer, client: Client, serve: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    served = serve(client, drop_after=5, cors_origins=["https://app.example"])
    origin = {"Origin": "https://app.example"}
    answers = [
        post_json(served.base + "/proxy", flux(), origin),
        post_json(served.base + "/proxy", {"app": "infsh/nope", "input": {}}),
        post_json(served.base + "/proxy", {"app": "infsh/flux-schnell", "input": {"prompt": 1}}),
        post_json(served.base + "/proxy", {"app": "../x", "input": {}}),
        request("POST", served.base + "/proxy", b"{", {"Content-Type": "application/json"}),
        request("POST", served.base + "/proxy", b"x" * (2 << 20), {"Content-Type": "application/json"}),
        request("GET", served.base + "/stream?taskId=tsk_unknown"),
        request("POST", served.base + "/cancel?taskId=tsk_unknown"),
        request("GET", served.base + "/nowhere"),
        request("OPTIONS", served.base + "/proxy", headers=origin),
        request("GET", served.url + "/"),
    ]
    task_id = answers[0].json()["data"]["id"]
    reader = stream(served.base, task_id).wait()
    answers.append(request("GET", f"{served.base}/stream?taskId={task_id}", headers={"Last-Event-ID": "3"}))
    answers.append(request("POST", f"{served.base}/cancel?taskId={task_id}"))
    with make_client(upstream, key="inf_wrong_key_also_secret_91c2") as wrong:
        refused = serve(wrong)
        bad_key = post_json(refused.base + "/proxy", {"app": "infsh/echo", "input": {}})
        assert bad_key.status == 502
        answers.append(bad_key)
        answers.append(request("GET", f"{refused.base}/stream?taskId={task_id}"))
    assert {a.status for a in answers} >= {200, 204, 400, 404, 413, 422, 502}
    for answer in answers:
        blob = json.dumps(answer.headers) + answer.body.decode("utf-8", "replace")
        assert SECRET not in blob and "inf_wrong_key_also_secret_91c2" not in blob
    assert SECRET.encode() not in reader.raw
    assert SECRET not in json.dumps(reader.response_headers)
    assert SECRET not in repr(served.relay) and SECRET not in repr(served.relay.client)
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert SECRET not in text and "inf_wrong_key_also_secret_91c2" not in text
    assert "started task" in caplog.text  # the relay did log, just not the key
