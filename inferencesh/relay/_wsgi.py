"""``Relay``: the WSGI application a web app mounts so browsers can run and follow tasks.

Routes, relative to wherever it is mounted (``SCRIPT_NAME``):

==========================  ==================================================
``POST /proxy``             ``{"app", "input", "setup"?}`` → upstream
                            ``POST /apps/run``; answers the upstream's
                            ``{"data": Task}``
``GET /stream?taskId=ID``   ``text/event-stream``: the task's events, same ids,
                            unnamed, ``status`` as the lowercase name; honours
                            the browser's ``Last-Event-ID``
``POST /cancel?taskId=ID``  upstream ``POST /tasks/{id}/cancel``; answers its
                            ``{"data": Task}`` (409 once the task had ended)
``/proxy`` with             the official JavaScript SDK's ``proxyUrl``: GET,
``x-inf-target-url``        POST, PUT or DELETE forwarded to that target on the
(or ``?__inf_target=``)     upstream with the key, the answer relayed as it
                            arrives (``_forward``)
==========================  ==================================================

In the Task answers of ``/proxy`` and ``/cancel`` the ``status`` is given as
its lowercase name too (the upstream may send the integer code), so a page
tests ``status === 'cancelled'`` the same way everywhere. Errors are
``application/problem+json``. The key is added here and never leaves: not in
a header, a body, an error or a log line.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import parse_qs

from .._errors import InferenceError, UsageError
from .._stream import read_task
from .._transport import quote_id
from ..client import Client
from ..models import TaskStatus, TaskUpdate
from ._forward import Forwarder, wants_forwarding
from ._http import BASE_HEADERS, Cors, header, read_body, respond_json, respond_problem, status_line, upstream_refusal
from ._pump import EventPump, Gauge
from ._validate import (
    AppAllowList,
    RelayRefusal,
    check_idempotency_key,
    check_task_id,
    parse_last_event_id,
    run_body,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger("inferencesh.relay")

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
_ROUTES = {"/proxy": "POST", "/stream": "GET", "/cancel": "POST"}


class Relay:
    """A WSGI application relaying browsers to the one configured upstream.

    ``Relay(api_key=..., base_url=..., **settings)`` builds its own ``Client``
    (same fallbacks: ``INFERENCE_API_KEY``, ``INFERENCE_BASE_URL``; settings
    are ``Settings`` fields); ``make_relay(client)`` shares an existing one.

    Options: ``allowed_apps`` (None: any app; else the only apps ``/proxy``
    may start, 403 for others; ``org/name`` allows every version),
    ``max_body_bytes`` (request body cap, 413 above it; default 1 MiB),
    ``cors_origins`` (origins that get CORS headers; none by default),
    ``heartbeat`` (seconds of quiet before a ``: ping``; default the
    client's ``heartbeat_interval``, 15 s), ``retry_ms`` (the browser's
    reconnect delay, sent as ``retry:``; default 1000), ``poll`` (seconds
    between checks for a gone browser where the server can tell; 0.1),
    ``drop_after`` (end each stream response after that many events; the
    browser resumes with ``Last-Event-ID``: for tests, or to stay under a
    proxy's response-length limit), ``allowed_hosts`` (origins besides the
    upstream that ``/proxy`` may forward the JavaScript SDK's calls to, as
    ``https://host[:port]`` or ``host[:port]``; none by default). Raises
    ``UsageError`` for bad options.
    Thread-safe; serve it with a threaded WSGI server (one thread per open
    stream); with waitress pass ``channel_request_lookahead=1`` so a browser
    that leaves is noticed within ``poll`` seconds even while the task is quiet.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        *,
        client: Optional[Client] = None,
        allowed_apps: Optional[Iterable[str]] = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        cors_origins: Iterable[str] = (),
        heartbeat: Optional[float] = None,
        retry_ms: Optional[int] = 1000,
        poll: float = 0.1,
        drop_after: Optional[int] = None,
        allowed_hosts: Iterable[str] = (),
        **settings: Any,
    ) -> None:
        if client is not None and (api_key is not None or base_url is not None or settings):
            raise UsageError("pass either client= or api_key/base_url/settings, not both")
        self._owns_client = client is None
        self.client = client if client is not None else Client(api_key=api_key, base_url=base_url, **settings)
        _check_number("max_body_bytes", max_body_bytes, integer=True)
        _check_number("poll", poll)
        if heartbeat is not None:
            _check_number("heartbeat", heartbeat)
        if retry_ms is not None:
            _check_number("retry_ms", retry_ms, integer=True)
        if drop_after is not None:
            _check_number("drop_after", drop_after, integer=True)
        self.allowed_apps = AppAllowList(allowed_apps)
        self.max_body_bytes = max_body_bytes
        self.cors = Cors(cors_origins)
        self.heartbeat = self.client.settings.heartbeat_interval if heartbeat is None else float(heartbeat)
        self.retry_ms = retry_ms
        self.poll = float(poll)
        self.drop_after = drop_after
        self._streams = Gauge()
        self._secret = self.client._api_key
        timeouts = (self.client.settings.connect_timeout, self.client.settings.request_timeout)
        self._forwarder = Forwarder(
            self.upstream,
            self._secret,
            allowed_hosts=allowed_hosts,
            timeouts=timeouts,
            max_body_bytes=max_body_bytes,
            poll=self.poll,
            allowed_apps=None if allowed_apps is None else self.allowed_apps.allows,
        )

    @property
    def upstream(self) -> str:
        """The one base URL this relay ever contacts."""
        return self.client.base_url

    @property
    def open_streams(self) -> int:
        """Browser streams being relayed right now."""
        return self._streams.value

    @property
    def open_forwards(self) -> int:
        """Answers of the JavaScript SDK's proxied calls being relayed right now."""
        return self._forwarder.gauge.value

    def close(self) -> None:
        """Release the pooled upstream connections (the client's only if the relay made it)."""
        self._forwarder.close()
        if self._owns_client:
            self.client.close()

    def __repr__(self) -> str:
        return f"<inferencesh.relay.Relay upstream={self.upstream!r}>"

    # -- WSGI ---------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """The WSGI entry point (PEP 3333)."""
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", "")) or "/"
        cors = self.cors.headers(environ)
        try:
            if path not in _ROUTES:
                raise RelayRefusal(404, "no such relay route; use /proxy, /stream or /cancel")
            if method == "OPTIONS" and self.cors.enabled:
                return self._preflight(environ, start_response)
            if path == "/proxy" and wants_forwarding(environ):
                return self._forwarder(environ, start_response, cors)
            if method != _ROUTES[path]:
                raise RelayRefusal(405, f"use {_ROUTES[path]}", {"Allow": _ROUTES[path]})
            if path == "/proxy":
                return self._proxy(environ, start_response, cors)
            if path == "/cancel":
                return self._cancel(environ, start_response, cors)
            return self._stream(environ, start_response, cors)
        except RelayRefusal as refusal:
            if refusal.status >= 500:
                log.warning("%s %s answered %d: %s", method, path, refusal.status, refusal.detail)
            else:
                log.info("%s %s refused with %d: %s", method, path, refusal.status, refusal.detail)
            return respond_problem(start_response, refusal.status, refusal.detail, [*refusal.headers.items(), *cors])
        except Exception:
            log.exception("%s %s failed in the relay", method, path)
            return respond_problem(start_response, 500, "the relay failed", cors)

    def _preflight(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        if not self.cors.allowed(header(environ, "Origin")):
            raise RelayRefusal(403, "this origin is not allowed")
        start_response(status_line(204), [*BASE_HEADERS, *self.cors.preflight(environ)])
        return []

    # -- routes ---------------------------------------------------------------

    def _proxy(
        self, environ: WSGIEnvironment, start_response: StartResponse, cors: list[tuple[str, str]]
    ) -> Iterable[bytes]:
        content_type = str(environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
        if content_type != "application/json":
            # Also what keeps a cross-site <form> from starting runs: JSON needs a CORS preflight.
            raise RelayRefusal(415, "the body must be application/json")
        body = read_body(environ, self.max_body_bytes)
        try:
            payload = json.loads(body.decode("utf-8"))
        except ValueError:
            raise RelayRefusal(400, "the body is not valid JSON") from None
        run = run_body(payload)
        if not self.allowed_apps.allows(run["app"]):
            raise RelayRefusal(403, "this app may not be run through this relay")
        key = check_idempotency_key(header(environ, "Idempotency-Key")) or uuid.uuid4().hex
        data = self._upstream_call("POST", "/apps/run", body=run, headers={"Idempotency-Key": key})
        log.info("started task %s (%s) for a browser", data.get("id"), run["app"])
        return respond_json(start_response, 200, {"data": data}, extra=cors)

    def _cancel(
        self, environ: WSGIEnvironment, start_response: StartResponse, cors: list[tuple[str, str]]
    ) -> Iterable[bytes]:
        task_id = check_task_id(_query_one(environ, "taskId"))
        data = self._upstream_call("POST", f"/tasks/{quote_id(task_id)}/cancel", retry=False)
        log.info("cancelled task %s for a browser", task_id)
        return respond_json(start_response, 200, {"data": data}, extra=cors)

    def _stream(
        self, environ: WSGIEnvironment, start_response: StartResponse, cors: list[tuple[str, str]]
    ) -> Iterable[bytes]:
        task_id = check_task_id(_query_one(environ, "taskId"))
        last_event_id = parse_last_event_id(header(environ, "Last-Event-ID"))
        task = self._upstream_call("GET", f"/tasks/{quote_id(task_id)}")
        stream = self.client.tasks.stream(task_id, last_event_id=last_event_id)
        prefetched: tuple[TaskUpdate, ...] = ()
        if TaskStatus.from_wire(task.get("status")).is_terminal:  # already a name (``_upstream_call``)
            # A finished task replays at once; with nothing left to send, 204 tells the
            # browser's EventSource to stop reconnecting (WHATWG: fail the connection).
            try:
                first = next(stream, None)
            except InferenceError as exc:
                stream.close()
                raise upstream_refusal(exc, self._scrub) from None
            if first is None:
                stream.close()
                start_response(status_line(204), [*BASE_HEADERS, *cors])
                return []
            prefetched = (first,)
        log.info("relaying the stream of task %s from event %s", task_id, last_event_id or 0)
        headers = [
            ("Content-Type", "text/event-stream; charset=utf-8"),
            *BASE_HEADERS,
            ("X-Accel-Buffering", "no"),
            *cors,
        ]
        start_response(status_line(200), headers)
        gone = environ.get("waitress.client_disconnected")
        return EventPump(
            stream,
            prefetched=prefetched,
            heartbeat=self.heartbeat,
            poll=self.poll,
            retry_ms=self.retry_ms,
            client_gone=gone if callable(gone) else None,
            drop_after=self.drop_after,
            gauge=self._streams,
        )

    # -- upstream -------------------------------------------------------------

    def _upstream_call(
        self, method: str, path: str, *, body: Any = None, headers: Optional[dict[str, str]] = None, retry: bool = True
    ) -> dict[str, Any]:
        """One JSON call to the upstream; its ``data`` with ``status`` as a name. ``RelayRefusal`` on errors."""
        timeout = self.client.settings.request_timeout
        transport = self.client._transport
        try:
            answer = transport.answer_within(timeout, method, path, body=body, headers=headers, retry=retry)
            if answer[0] is None and method == "POST" and path.endswith("/cancel"):
                answer = transport.answer_within(timeout, "GET", path[: -len("/cancel")])  # HOSTED.md: may be empty
            task, _ = read_task(answer, self.client.settings.dialect)
        except InferenceError as exc:
            raise upstream_refusal(exc, self._scrub) from None
        data = answer[0]
        if not isinstance(data, dict):
            raise RelayRefusal(502, "the upstream answered something other than a task")
        # the status as its name, read with the table of the upstream's dialect
        return {**data, "status": task.status.value} if "status" in data else data

    def _scrub(self, text: str) -> str:
        if self._secret and self._secret in text:
            text = text.replace(self._secret, "***")
        return text


def make_relay(client: Client, **options: Any) -> Relay:
    """A ``Relay`` that uses ``client`` (its key, base URL and settings); options as for ``Relay``."""
    return Relay(client=client, **options)


def _query_one(environ: WSGIEnvironment, name: str) -> Optional[str]:
    values = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True).get(name)
    if not values:
        return None
    if len(values) > 1:
        raise RelayRefusal(400, f"give {name} once")
    return values[0]


def _check_number(name: str, value: Any, *, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        kind = "a whole number" if integer else "a number"
        raise UsageError(f"{name} must be {kind} > 0, not {value!r}")
