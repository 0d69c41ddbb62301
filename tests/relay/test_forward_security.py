"""``/proxy`` with a target (the JavaScript SDK's protocol) is never an open proxy: every refusal, over raw HTTP.

The relay's upstream is a recording server at ``/v1``; a second one plays the host an attacker wants
reached. A refusal is 412 ``{"error": ...}`` with no ``errors`` array, and neither server hears a byte.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Optional
from urllib.parse import quote

import pytest

from inferencesh import UsageError
from inferencesh.relay import Relay, RelayServer, site

from .helpers import MOUNT, SECRET, Answer, request
from .recorder import Recorder


@pytest.fixture(scope="module")
def upstream_rec() -> Iterator[Recorder]:
    with Recorder.serve() as running:
        yield running


@pytest.fixture(scope="module")
def evil() -> Iterator[Recorder]:
    with Recorder.serve() as running:
        yield running


@dataclass
class Front:
    relay: Relay
    server: RelayServer
    upstream: Recorder

    @property
    def proxy(self) -> str:
        return self.server.url + MOUNT + "/proxy"

    def call(
        self,
        target: str,
        *,
        method: str = "GET",
        via: str = "header",
        headers: Optional[dict[str, str]] = None,
        body: Optional[bytes] = None,
    ) -> Answer:
        sent = dict(headers or {})
        url = self.proxy
        if via in ("header", "both"):
            sent["x-inf-target-url"] = target
        if via in ("query", "both"):
            url += "?__inf_target=" + quote(target, safe="")
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
        return request(method, url, body, sent)


@pytest.fixture()
def front(upstream_rec: Recorder) -> Iterator[Front]:
    relay = Relay(api_key=SECRET, base_url=upstream_rec.url + "/v1")
    with RelayServer(site(relay), threads=8) as server:
        yield Front(relay, server, upstream_rec)
    relay.close()


def assert_refused(answer: Answer, status: int = 412) -> None:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == "application/json"
    payload = answer.json()
    assert set(payload) == {"error"} and isinstance(payload["error"], str)  # no "errors": not "requirements"
    assert SECRET.encode() not in answer.body


def tricks(up: str, evil: str) -> list[str]:
    """Targets that must never be called: other hosts, ports, schemes, userinfo, paths out of the base."""
    host, port = up.split("//")[1].split(":")
    evil_netloc = evil.split("//")[1]
    return [
        f"{evil}/v1/apps/run",  # another host:port
        f"http://{host}:{int(port) + 1}/v1/apps/run" if int(port) < 65535 else f"http://{host}:1/v1/x",
        f"https://{host}:{port}/v1/apps/run",  # another scheme
        f"http://localhost:{port}/v1/apps/run",  # the same machine under another name
        f"http://{host}:{port}.evil.example/v1/apps/run",
        f"http://user:pass@{host}:{port}/v1/apps/run",  # userinfo
        f"http://{host}:{port}@{evil_netloc}/v1/apps/run",
        f"http://{evil_netloc}#@{host}:{port}/v1/apps/run",
        f"http://{evil_netloc}?@{host}:{port}/v1/apps/run",
        f"http://{host}:{port}/v2/apps/run",  # outside the base path
        f"http://{host}:{port}/v1x/apps/run",
        f"http://{host}:{port}/",
        f"http://{host}:{port}/v1/../admin",  # dot segments
        f"http://{host}:{port}/v1/./apps/run",
        f"http://{host}:{port}/v1/tasks/..",
        f"http://{host}:{port}/v1//apps/run",
        f"http://{host}:{port}/v1/%2e%2e/admin",  # encoded dots, slashes, backslashes, percents
        f"http://{host}:{port}/v1/%2E%2E%2Fadmin",
        f"http://{host}:{port}/v1/tasks%2F..%2F..%2Fadmin",
        f"http://{host}:{port}/v1/tasks%5c..%5cadmin",
        f"http://{host}:{port}/v1/%252e%252e/admin",
        f"http://{host}:{port}\\@{evil_netloc}/v1/apps/run",  # a backslash
        f"http://{host}:{port}/v1/apps/run#frag",
        f"http://{host}:{port}:{port}/v1/apps/run",
        f"http://{host}:/v1/apps/run",
        f"http://{host}:99999/v1/apps/run",
        f"//{host}:{port}/v1/apps/run",  # not absolute
        "/v1/apps/run",
        f"ftp://{host}:{port}/v1/apps/run",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "",
    ]


UNSENDABLE_IN_A_HEADER = [
    "{up}/v1/apps/run\r\nHost: evil.example",  # CR/LF
    "{up}/v1/apps/run\nX-Evil: 1",
    "{up}/v1/apps/run\t",
    "{up}/v1/apps /run",
    "{up}/v1/t\u0430sks/x",  # a Cyrillic a
    "http://\u0430pi.inference.sh/v1/apps/run",  # an IDN look-alike of an allowed host
    "http://api.inference.sh\u3002evil.example/v1/apps/run",  # an ideographic full stop
    "{up}/v1/apps/run\u2028",
]


def test_every_url_trick_is_refused_before_a_byte_is_sent(front: Front, evil: Recorder) -> None:
    before = len(front.upstream.seen)
    for target in tricks(front.upstream.url, evil.url):
        for via in ("header", "query"):
            answer = front.call(target, via=via)
            assert_refused(answer)
            assert not target or target not in answer.body.decode(), "a refusal never echoes the target"
    for trick in UNSENDABLE_IN_A_HEADER:
        assert_refused(front.call(trick.format(up=front.upstream.url), via="query"))
    assert evil.seen == []
    assert len(front.upstream.seen) == before


def test_idn_look_alikes_of_an_allowed_host_are_refused(upstream_rec: Recorder, evil: Recorder) -> None:
    relay = Relay(api_key=SECRET, base_url=upstream_rec.url + "/v1", allowed_hosts=["api.inference.sh"])
    with RelayServer(site(relay), threads=4) as server:
        front = Front(relay, server, upstream_rec)
        for target in (
            "https://xn--pi-7ld.inference.sh/tasks/x",  # punycode of the look-alike
            "https://api.inference.sh./tasks/x",  # a trailing dot
            "https://api.inference.sh.evil.example/tasks/x",
            "https://evil-api.inference.sh/tasks/x",
            "https://api.inference.sh:8443/tasks/x",  # an allowed host, another port
            "http://api.inference.sh/tasks/x",  # an allowed host, another scheme
        ):
            assert_refused(front.call(target))
        for target in ("https://\u0430pi.inference.sh/tasks/x", "https://api.inference.s\u0125/tasks/x"):
            assert_refused(front.call(target, via="query"))
    relay.close()
    assert evil.seen == []


def test_redirects_are_not_followed(front: Front, evil: Recorder) -> None:
    for to in (evil.url + "/v1/stolen", front.upstream.url + "/v1/ok"):
        target = f"{front.upstream.url}/v1/redirect?to={quote(to, safe='')}"
        answer = front.call(target)
        assert_refused(answer, 502)
        assert "location" not in answer.headers
    assert evil.seen == []
    assert not any(seen.path.endswith("/ok") for seen in front.upstream.seen)


def test_the_query_parameter_works_for_get_only(front: Front) -> None:
    """A cross-site <form> can write a query parameter, never a header: POST needs x-inf-target-url."""
    before = len(front.upstream.seen)
    target = front.upstream.url + "/v1/apps/run"
    for method in ("POST", "PUT", "DELETE"):
        assert_refused(front.call(target, method=method, via="query", body=b'{"app": "infsh/echo"}'))
    twice = f"{front.proxy}?__inf_target={quote(target, safe='')}&__inf_target={quote(target, safe='')}"
    assert_refused(request("GET", twice))
    other = front.upstream.url + "/v1/tasks/x"
    mixed = request("GET", f"{front.proxy}?__inf_target={quote(other, safe='')}", None, {"x-inf-target-url": target})
    assert_refused(mixed)
    assert len(front.upstream.seen) == before
    assert front.call(target, method="POST", body=b"{}").status == 200  # the header: forwarded


def test_other_methods_are_405(front: Front) -> None:
    before = len(front.upstream.seen)
    for method in ("PATCH", "HEAD", "TRACE", "CONNECT"):
        answer = front.call(front.upstream.url + "/v1/tasks/x", method=method)
        assert answer.status == 405, (method, answer.status)
    assert len(front.upstream.seen) == before


def test_browser_credentials_never_go_upstream(front: Front) -> None:
    answer = front.call(
        front.upstream.url + "/v1/apps/run?x=1",
        method="POST",
        body=b'{"app": "infsh/echo", "input": {}}',
        headers={
            "Cookie": "sessionid=browser-session; csrftoken=t",
            "Authorization": "Bearer browser-own-token",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "X-Forwarded-For": "10.0.0.1",
            "Host": "evil.example",
            "x-inf-trace": "abc",
            "X-API-Version": "2",
            "X-Client-Source": "inference-sdk-js/0.5.13",
            "Accept": "application/json",
            "Origin": "https://evil.example",
        },
    )
    assert answer.status == 200, answer.body
    seen = front.upstream.seen[-1]
    assert (seen.method, seen.path, seen.body) == ("POST", "/v1/apps/run?x=1", b'{"app": "infsh/echo", "input": {}}')
    assert seen.headers["authorization"] == f"Bearer {SECRET}"
    for name in ("cookie", "proxy-authorization", "x-forwarded-for", "origin", "x-inf-target-url"):
        assert name not in seen.headers, name
    assert seen.headers["host"] == front.upstream.url.split("//")[1]
    assert seen.headers["x-inf-trace"] == "abc"
    assert seen.headers["x-api-version"] == "2"
    assert seen.headers["x-client-source"] == "inference-sdk-js/0.5.13"
    assert seen.headers["x-inf-proxy"].startswith("inferencesh-relay/")
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["accept"] == "application/json"
    assert "set-cookie" not in answer.headers  # the upstream's cookie is the relay's, not the page's
    assert SECRET.encode() not in answer.body + repr(answer.headers).encode()


def test_the_key_is_in_no_log_line_and_no_error_page(upstream_rec: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    unreachable = Relay(api_key=SECRET, base_url="http://127.0.0.1:9/v1", connect_timeout=2)
    with RelayServer(site(unreachable), threads=4) as server:
        front = Front(unreachable, server, upstream_rec)
        down = front.call("http://127.0.0.1:9/v1/apps/run", method="POST", body=b"{}")
        assert_refused(down, 502)
        assert_refused(front.call("http://evil.example/v1/x"))
    unreachable.close()
    relay = Relay(api_key=SECRET, base_url=upstream_rec.url + "/v1")
    with RelayServer(site(relay), threads=4) as server:
        assert Front(relay, server, upstream_rec).call(upstream_rec.url + "/v1/tasks/x").status == 200
    relay.close()
    assert caplog.records, "the relay logs what it forwards"
    assert SECRET not in caplog.text
    assert all(SECRET not in repr(record.args) for record in caplog.records)


def test_bodies_are_capped(upstream_rec: Recorder) -> None:
    relay = Relay(api_key=SECRET, base_url=upstream_rec.url + "/v1", max_body_bytes=100)
    with RelayServer(site(relay), threads=4) as server:
        front = Front(relay, server, upstream_rec)
        before = len(upstream_rec.seen)
        assert_refused(front.call(upstream_rec.url + "/v1/apps/run", method="POST", body=b"x" * 101), 413)
        assert len(upstream_rec.seen) == before
        assert front.call(upstream_rec.url + "/v1/apps/run", method="POST", body=b"{}").status == 200
    relay.close()


def test_the_app_allow_list_applies_to_forwarded_runs(upstream_rec: Recorder) -> None:
    relay = Relay(api_key=SECRET, base_url=upstream_rec.url + "/v1", allowed_apps=["infsh/echo"])
    with RelayServer(site(relay), threads=4) as server:
        front = Front(relay, server, upstream_rec)
        before = len(upstream_rec.seen)
        run = upstream_rec.url + "/v1/apps/run"
        assert_refused(front.call(run, method="POST", body=b'{"app": "infsh/flux-schnell", "input": {}}'), 403)
        assert_refused(front.call(run, method="POST", body=b'{"app": "../x"}'), 400)
        assert len(upstream_rec.seen) == before
        assert front.call(run, method="POST", body=b'{"app": "infsh/echo", "input": {}}').status == 200
    relay.close()


def test_allowed_hosts_are_exact_origins(upstream_rec: Recorder, evil: Recorder) -> None:
    with pytest.raises(UsageError):
        Relay(api_key=SECRET, base_url=upstream_rec.url, allowed_hosts="api.inference.sh")
    for bad in ("", "http://user@host", "https://host/path", "ftp://host", "h\u00f6st.example", "host:port"):
        with pytest.raises(UsageError):
            Relay(api_key=SECRET, base_url=upstream_rec.url, allowed_hosts=[bad])
    relay = Relay(api_key=SECRET, base_url=upstream_rec.url + "/v1", allowed_hosts=[evil.url])
    with RelayServer(site(relay), threads=4) as server:
        front = Front(relay, server, upstream_rec)
        assert front.call(evil.url + "/anything/at/all").status == 200  # allowed explicitly: any path
        assert evil.seen[-1].headers["authorization"] == f"Bearer {SECRET}"
        evil.seen.clear()
    relay.close()
