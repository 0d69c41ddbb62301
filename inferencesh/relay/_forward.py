"""The server half of the official JavaScript SDK's ``proxyUrl`` (HOSTED.md, "Browser proxy").

``inference({proxyUrl: "/api/inference/proxy"})`` in ``@inferencesh/sdk`` sends
every call to the proxy with the real URL in ``x-inf-target-url`` (streams: also
in the ``__inf_target`` query parameter). ``Forwarder`` checks that URL against
the relay's one upstream (same scheme, host and port, path under its base) and
the hosts the application allowed, rebuilds it from the configured origin (never
from the browser's string), adds the relay's key and relays the answer as it
arrives. Refusals are ``{"error": ...}`` JSON (412 for a target it will not
call), answered before a byte goes anywhere.

What goes upstream: the method (GET, POST, PUT, DELETE), the body, ``Accept``,
``Content-Type``, ``x-inf-*``, ``x-api-version``, ``x-client-source``,
``Authorization: Bearer <the relay's key>`` and ``x-inf-proxy``. Never the
browser's cookies or its own ``Authorization``; no redirect is followed (a 3xx
becomes 502); ``trust_env`` is off, so no environment proxy or ``~/.netrc``
applies. What comes back: the status and headers, less ``content-length``,
``content-encoding``, hop-by-hop headers and ``set-cookie``; the body chunk by
chunk (``BodyPump``), the upstream closed as soon as the browser goes away.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional, Union
from urllib.parse import parse_qs, urlsplit

import requests

from .._version import __version__
from ._http import BASE_HEADERS, header, read_body, status_line
from ._pump import Gauge
from ._target import TargetPolicy, origin_of, refuse
from ._validate import RelayRefusal, check_app

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("inferencesh.relay")

TARGET_HEADER = "x-inf-target-url"
TARGET_PARAM = "__inf_target"
METHODS = ("GET", "POST", "PUT", "DELETE")
PROXY_ID = f"inferencesh-relay/{__version__}"
_CHUNK = 64 * 1024
_FORWARDED = ("accept", "content-type", "x-api-version", "x-client-source")
_NOT_FORWARDED_INF = (TARGET_HEADER, "x-inf-proxy")
_DROPPED = frozenset(
    {
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "set-cookie",
        "cache-control",  # BASE_HEADERS says no-store
        "x-content-type-options",
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "vary",
    }
)



def wants_forwarding(environ: WSGIEnvironment) -> bool:
    """True when a ``/proxy`` request names a target (header or query parameter): the SDK's protocol."""
    return header(environ, TARGET_HEADER) is not None or TARGET_PARAM in parse_qs(
        str(environ.get("QUERY_STRING", "")), keep_blank_values=True
    )


def respond_error(
    start_response: StartResponse, code: int, detail: str, extra: Sequence[tuple[str, str]] = ()
) -> list[bytes]:
    """An ``{"error": detail}`` answer, the official proxy's error shape (no ``errors`` array)."""
    body = json.dumps({"error": detail}).encode("utf-8")
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *BASE_HEADERS, *extra]
    start_response(status_line(code), headers)
    return [body]


class Forwarder:
    """Forwards the SDK's proxied calls to the allowed targets with the relay's key.

    ``upstream`` is the relay's base URL, ``secret`` its key (None: none is
    added), ``allowed_hosts`` further origins the application allows,
    ``timeouts`` the (connect, read) seconds of the upstream call,
    ``max_body_bytes`` the request body cap, ``poll`` how often a quiet answer
    checks for a gone browser, ``allowed_apps`` a predicate for ``app`` in
    ``POST <base>/apps/run`` bodies (None: any). Thread-safe.
    """

    def __init__(
        self,
        upstream: str,
        secret: Optional[str],
        *,
        allowed_hosts: Iterable[str] = (),
        timeouts: tuple[float, float],
        max_body_bytes: int,
        poll: float,
        allowed_apps: Optional[Callable[[str], bool]] = None,
    ) -> None:
        self.policy = TargetPolicy(upstream, allowed_hosts)
        self._secret = secret
        self._timeouts = timeouts
        self._max_body = max_body_bytes
        self._poll = poll
        self._allowed_apps = allowed_apps
        self.session = requests.Session()
        self.session.trust_env = False  # no environment proxy, no ~/.netrc credentials
        self.gauge = Gauge()

    def close(self) -> None:
        """Release the pooled upstream connections."""
        self.session.close()

    def __call__(
        self, environ: WSGIEnvironment, start_response: StartResponse, cors: Sequence[tuple[str, str]]
    ) -> Iterable[bytes]:
        """Answer one proxied call; refusals are ``{"error"}`` JSON, upstream failures 502/504."""
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        try:
            url = self._target(environ, method)
            body = self._body(environ, method, url)
            headers = self._headers(environ, body is not None)
        except RelayRefusal as refusal:
            log.info("%s /proxy refused with %d: %s", method, refusal.status, refusal.detail)
            extra = [*refusal.headers.items(), *cors]
            return respond_error(start_response, refusal.status, refusal.detail, extra)
        try:
            answer = self.session.request(
                method, url, data=body, headers=headers, stream=True, allow_redirects=False, timeout=self._timeouts
            )
        except requests.Timeout:
            log.warning("%s /proxy: the upstream did not answer in time", method)
            return respond_error(start_response, 504, "the upstream did not answer in time", cors)
        except requests.RequestException as exc:
            log.warning("%s /proxy: the upstream could not be reached (%s)", method, type(exc).__name__)
            return respond_error(start_response, 502, "the upstream could not be reached", cors)
        if answer.is_redirect or 300 <= answer.status_code < 400:
            answer.close()
            log.warning("%s /proxy: the upstream answered a redirect, not followed", method)
            return respond_error(
                start_response, 502, "the upstream answered a redirect, which the relay does not follow", cors
            )
        log.info("%s /proxy → %s %d", method, urlsplit(url).path, answer.status_code)
        relayed = [(k, v) for k, v in answer.headers.items() if k.lower() not in _DROPPED]
        start_response(status_line(answer.status_code), [*relayed, *BASE_HEADERS, ("X-Accel-Buffering", "no"), *cors])
        gone = environ.get("waitress.client_disconnected")
        return BodyPump(answer, poll=self._poll, client_gone=gone if callable(gone) else None, gauge=self.gauge)

    def _target(self, environ: WSGIEnvironment, method: str) -> str:
        if method not in METHODS:
            raise RelayRefusal(405, "the proxy forwards GET, POST, PUT and DELETE", {"Allow": ", ".join(METHODS)})
        in_header = header(environ, TARGET_HEADER)
        in_query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True).get(TARGET_PARAM)
        if in_query is not None and len(in_query) > 1:
            raise refuse(f"give {TARGET_PARAM} once")
        if in_query is not None and method != "GET":
            # A cross-site <form> can put a query parameter in a URL, never a header.
            raise refuse(f"{TARGET_PARAM} is for GET (streams); send {TARGET_HEADER}")
        query_target = in_query[0] if in_query else None
        if in_header is not None and query_target is not None and in_header != query_target:
            raise refuse(f"{TARGET_HEADER} and {TARGET_PARAM} name different targets")
        raw = in_header if in_header is not None else query_target
        return self.policy.check(raw or "")

    def _body(self, environ: WSGIEnvironment, method: str, url: str) -> Optional[bytes]:
        if method == "GET":
            return None
        declared = str(environ.get("CONTENT_LENGTH") or "")
        chunked = "chunked" in (header(environ, "Transfer-Encoding") or "").lower()
        if declared in ("", "0") and not chunked:
            body = b""
        else:
            body = read_body(environ, self._max_body)
        if self._allowed_apps is not None and method == "POST" and self._is_run(url):
            self._check_app(body)
        return body

    def _is_run(self, url: str) -> bool:
        parts = urlsplit(url)
        return origin_of(url) == self.policy.upstream and parts.path == self.policy.base_path + "/apps/run"

    def _check_app(self, body: bytes) -> None:
        try:
            app = check_app(json.loads(body.decode("utf-8")).get("app"))
        except (ValueError, AttributeError, RelayRefusal):
            raise RelayRefusal(400, "the run must name an app such as 'infsh/flux-schnell'") from None
        if self._allowed_apps is not None and not self._allowed_apps(app):
            raise RelayRefusal(403, "this app may not be run through this relay")

    def _headers(self, environ: WSGIEnvironment, has_body: bool) -> dict[str, str]:
        headers: dict[str, str] = {"Accept-Encoding": "identity", "x-inf-proxy": PROXY_ID, "User-Agent": PROXY_ID}
        for key, value in environ.items():
            if (not key.startswith("HTTP_") and key != "CONTENT_TYPE") or not isinstance(value, str):
                continue
            name = key[5:].lower().replace("_", "-") if key != "CONTENT_TYPE" else "content-type"
            if name in _FORWARDED or (name.startswith("x-inf-") and name not in _NOT_FORWARDED_INF):
                if any(ch in value for ch in "\r\n\0"):
                    raise RelayRefusal(400, "a header holds a line break")
                if value:
                    headers[name] = value
        headers.setdefault("accept", "application/json")
        if has_body:
            headers.setdefault("content-type", "application/json")
        if self._secret:
            headers["Authorization"] = f"Bearer {self._secret}"
        return headers


class _End:
    """Queued by the reader at the end of the upstream body."""


_Item = Union[bytes, _End, Exception]


class BodyPump:
    """The WSGI response iterable of one forwarded answer: its bytes as they arrive.

    A reader thread reads the upstream body (``read1``: whatever has arrived)
    and queues it; iterating hands each piece to the WSGI server at once. It
    ends at the body's end, on an upstream failure (logged; the browser sees a
    cut answer) or when the browser goes away: ``client_gone`` (waitress'
    disconnect check, polled every ``poll`` seconds), or ``close()`` from the
    server after a failed write. Ending early shuts the upstream socket down,
    which wakes the blocked read.
    """

    def __init__(
        self,
        answer: requests.Response,
        *,
        poll: float,
        client_gone: Optional[Callable[[], bool]],
        gauge: Gauge,
    ) -> None:
        self._answer = answer
        self._poll = poll
        self._client_gone = client_gone
        self._gauge = gauge
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self._done = False
        gauge.add(1)
        self._reader = threading.Thread(target=self._read, name="inferencesh-relay-forward", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        raw = self._answer.raw
        try:
            while not self._closed:
                chunk = raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    self._done = True
                    self._queue.put(_End())
                    break
                self._queue.put(chunk)
        except Exception as exc:  # reported to the iterator, which logs it and ends the answer
            if not self._closed:
                self._queue.put(exc)
        finally:
            if self._done:
                raw.release_conn()  # read to its end: the connection goes back to the pool
            else:
                self._answer.close()

    def __iter__(self) -> BodyPump:
        return self

    def __next__(self) -> bytes:
        while True:
            if self._closed:
                raise StopIteration
            if self._client_gone is not None and self._client_gone():
                log.info("browser left a proxied answer; closing the upstream")
                self.close()
                raise StopIteration
            try:
                item = self._queue.get(timeout=self._poll)
            except queue.Empty:
                continue
            if isinstance(item, bytes):
                return item
            if isinstance(item, Exception):
                log.warning("the upstream answer broke off: %s", type(item).__name__)
            self.close()
            raise StopIteration

    def close(self) -> None:
        """End the answer (idempotent, any thread); an unfinished upstream read is woken and closed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if not self._done:
            _shutdown(self._answer)
        self._gauge.add(-1)

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()


def _shutdown(answer: requests.Response) -> None:
    """Shut the answer's socket down so a read blocked on it returns at once."""
    connection: Any = getattr(answer.raw, "_connection", None)
    sock: Optional[socket.socket] = getattr(connection, "sock", None)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed
