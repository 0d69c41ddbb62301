"""The Starlette application: routes, auth, request records, problem+json errors.

``create_app(dialect=...)`` mounts the v1 routes (PROTOCOL.md, here) or the
hosted ones (``_hosted``, ``_hosted_chats``) over the same store, apps and
runner; the dialect also picks the store's writer and the problem ``type``.
"""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional, cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import _apps
from ._agents import ROUTES as AGENT_ROUTES
from ._agents import Chats, ChatWriter
from ._conn import ConnectionRegistry
from ._faults import parse_faults, retry_after_header
from ._files import DEFAULT_MAX_FILE_BYTES, FileStore, is_public
from ._files import ROUTES as FILE_ROUTES
from ._hosted_wire import HostedWriter, error_type
from ._store import Store, Task
from ._stream import Gauge, stream_response

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class RequestRecord:
    """One request as the server saw it; ``status`` is None until answered."""

    method: str
    path: str
    last_event_id: Optional[str]
    idempotency_key: Optional[str]
    authorization: Optional[str]
    user_agent: Optional[str]
    status: Optional[int] = None
    accept: Optional[str] = None
    api_version: Optional[str] = None


class RequestLog:
    """Every request a server received, in arrival order; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


@dataclass
class ServerState:
    """What the routes share: settings, tasks, connections, records, gauges."""

    store: Store
    speed: float
    heartbeat: float
    retry_ms: int
    api_key: Optional[str]
    registry: ConnectionRegistry
    requests: RequestLog
    streams: Gauge
    dialect: str = "v1"


def problem(
    status: int, detail: str, headers: Optional[dict[str, str]] = None, *, dialect: str = "v1"
) -> JSONResponse:
    """An ``application/problem+json`` answer (RFC 9457) with ``status``.

    Its ``type`` is ``about:blank`` in v1, ``https://inference.sh/errors/<code>`` in the hosted dialect.
    """
    title = _TITLES.get(status, "Error")
    kind = error_type(status) if dialect == "hosted" else "about:blank"
    body = {"type": kind, "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status, headers=headers, media_type="application/problem+json")


class _Guard:
    """Outermost ASGI layer: records each request, then checks the API key."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self._app = app
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        record = RequestRecord(
            method=scope["method"],
            path=scope["path"],
            last_event_id=headers.get("last-event-id"),
            idempotency_key=headers.get("idempotency-key"),
            authorization=headers.get("authorization"),
            user_agent=headers.get("user-agent"),
            accept=headers.get("accept"),
            api_version=headers.get("x-api-version"),
        )
        self._state.requests.append(record)

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        key = self._state.api_key
        if key is not None and not is_public(scope["method"], scope["path"]):
            given = headers.get("authorization", "").encode("latin-1")
            if not hmac.compare_digest(given, b"Bearer " + key.encode("latin-1")):
                answer = problem(
                    401, "missing or unknown API key", {"WWW-Authenticate": "Bearer"}, dialect=self._state.dialect
                )
                await answer(scope, receive, recording_send)
                return
        await self._app(scope, receive, recording_send)


def _state(request: Request) -> ServerState:
    return cast(ServerState, request.app.state.infsh)


def _task(request: Request) -> Task:
    task = _state(request).store.tasks.get(request.path_params["task_id"])
    if task is None:
        raise HTTPException(404, "unknown task")
    return task


def _envelope(state: ServerState, task: Task) -> JSONResponse:
    return JSONResponse({"data": task.to_json(state.store.status_names)})


async def accept_run(request: Request) -> tuple[Task, dict[str, Any]]:
    """Check a ``POST /apps/run``, then create (or find by Idempotency-Key) its task and start it.

    Returns the task and the request body. Raises ``HTTPException`` (problem+json) for a bad
    request, an unknown app, a due ``run_status`` fault, or a ``run_drop`` (after creating the task).
    """
    state = _state(request)
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise HTTPException(400, "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(422, "the request body must be a JSON object")
    name, data, setup = body.get("app"), body.get("input"), body.get("setup")
    if not isinstance(name, str) or not name:
        raise HTTPException(422, "'app' must be a non-empty string")
    if not isinstance(data, dict):
        raise HTTPException(422, "'input' must be an object")
    if setup is not None and not isinstance(setup, dict):
        raise HTTPException(422, "'setup' must be an object")
    try:
        specs = parse_faults(data.get("_faults"))
    except ValueError as exc:
        raise HTTPException(422, f"invalid '_faults': {exc}") from None
    data = {k: v for k, v in data.items() if k != "_faults"}
    app = _apps.APPS.get(_app_name(name, state.dialect))
    if app is None:
        raise HTTPException(404, f"unknown app {name!r}; built-in apps: {', '.join(_apps.APPS)}")
    invalid = app.validate(data)
    if invalid is not None:
        raise HTTPException(422, f"invalid input for {name}: {invalid}")

    store = state.store
    fault = store.run_fault(json.dumps(body, sort_keys=True), specs)
    if fault is not None:
        detail = f"injected fault: {fault.kind} {fault.code}"
        raise HTTPException(fault.code, detail, retry_after_header(fault.retry_after))
    key = request.headers.get("idempotency-key")
    task = store.by_idempotency_key(key) if key else None
    if task is None:
        task = store.create(app.name, data, setup, specs, key or None)
        _apps.start(store, task, app, state.speed, request.app.state.files, request.app.state.files.base(request))
    drop = task.faults.fire("run_drop")
    if drop is not None:
        raise HTTPException(503, "injected fault: run_drop (the task was created)")
    return task, body


def _app_name(ref: str, dialect: str) -> str:
    """The built-in app a reference names; the hosted dialect also takes ``ns/name@version``."""
    if dialect == "hosted":
        return ref.partition("@")[0]
    return ref


async def run_app(request: Request) -> Response:
    """``POST /apps/run``: create (or find by Idempotency-Key) a task and start it."""
    task, _ = await accept_run(request)
    return _envelope(_state(request), task)


async def get_task(request: Request) -> Response:
    """``GET /tasks/{id}``."""
    return _envelope(_state(request), _task(request))


async def cancel_task(request: Request) -> Response:
    """``POST /tasks/{id}/cancel``: 409 when the task already ended."""
    state, task = _state(request), _task(request)
    if not state.store.cancel(task):
        raise HTTPException(409, f"task {task.id} already ended")
    return _envelope(state, task)


async def stream_task(request: Request) -> Response:
    """``GET /tasks/{id}/stream``: the task's events as SSE, resumable."""
    task = _task(request)
    return stream_response(request, _state(request), task.events, task.faults)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return problem(exc.status_code, detail, dict(exc.headers or {}), dialect=_state(request).dialect)


async def _server_error(request: Request, exc: Exception) -> Response:
    return problem(500, f"internal error: {type(exc).__name__}", dialect=_state(request).dialect)


V1_ROUTES = [
    Route("/apps/run", run_app, methods=["POST"]),
    Route("/tasks/{task_id}", get_task, methods=["GET"]),
    Route("/tasks/{task_id}/cancel", cancel_task, methods=["POST"]),
    Route("/tasks/{task_id}/stream", stream_task, methods=["GET"]),
    *AGENT_ROUTES,
]
DIALECTS = ("v1", "hosted")


def create_app(
    *,
    api_key: Optional[str] = None,
    speed: float = 1.0,
    heartbeat: float = 15.0,
    retry_ms: int = 1000,
    faults: Optional[Sequence[dict[str, Any]]] = None,
    status_names: bool = False,
    dialect: str = "v1",
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    files_url: Optional[str] = None,
) -> Starlette:
    """The ASGI app of the local server (see ``LocalServer`` for the arguments).

    Its shared state is ``app.state.infsh`` (a ``ServerState``). Raises
    ``ValueError`` for a bad fault spec, a non-positive speed or heartbeat,
    a negative retry_ms, a non-positive max_file_bytes, or a dialect other
    than "v1" and "hosted". Files (``_files``) live in ``app.state.files``. Streams
    end on their own only when ``store.shutdown()`` is called, which
    ``LocalServer`` and ``serve`` do on stop.
    """
    if speed <= 0 or heartbeat <= 0 or retry_ms < 0:
        raise ValueError("speed and heartbeat must be > 0, retry_ms >= 0")
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, not {dialect!r}")
    hosted = dialect == "hosted"
    specs = parse_faults(list(faults or []))
    writer = HostedWriter() if hosted else None
    state = ServerState(
        store=Store(faults=specs, status_names=status_names, writer=writer, dialect=dialect),
        speed=speed,
        heartbeat=heartbeat,
        retry_ms=int(retry_ms),
        api_key=api_key,
        registry=ConnectionRegistry(),
        requests=RequestLog(),
        streams=Gauge(),
        dialect=dialect,
    )
    files = FileStore(max_file_bytes, files_url)
    routes: list[BaseRoute] = list(V1_ROUTES)
    chat_writer: Optional[ChatWriter] = None
    if hosted:  # imported here: the hosted routes build on this module
        from ._hosted import ROUTES as HOSTED_ROUTES
        from ._hosted_chats import HostedChatWriter

        routes, chat_writer = list(HOSTED_ROUTES), HostedChatWriter()
    app = Starlette(
        routes=[*routes, *FILE_ROUTES],
        middleware=[Middleware(_Guard, state=state)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.infsh = state
    app.state.files = files
    app.state.chats = Chats(state.store, speed, chat_writer)
    return app
