"""How the hosted dialect (HOSTED.md) writes things: DTOs, stream objects, envelopes, errors.

A stream item is a ``HostedItem``: one object already written both ways, as
an NDJSON line and as an SSE block, so a stream picks its framing per
request (by ``Accept``) without encoding anything again. JSON is always
ASCII-escaped (a raw U+2028 in a stream makes the official client drop the
event).

Choices where HOSTED.md is silent:

- A partial update's ``data`` always holds ``id``, ``status`` and
  ``updated_at``; ``fields`` names what changed (``status`` only when it
  changed, always ``updated_at``). A status change also carries ``events``
  (the whole history); a log change carries ``logs`` (every record, whole).
- A change with nothing a TaskDTO shows (a progress tick, a v1 preview) is
  still one partial, of ``updated_at``; partial outputs are not sent.
- Log record ids are ``<task id>-log<log_type>``; event ids
  ``<task id>-ev<n>``; ``short_id`` is the last 8 characters of the id;
  ``status_text`` the status name; ``session_id`` is always null.
- Deltas count ``seq`` from 1 per task; ``resource_id`` is ``""``.
- Errors: ``type`` is ``https://inference.sh/errors/<code>`` with the code
  named by the HTTP status (``ERROR_CODES``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Optional, cast

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ._events import EventLog
from ._faults import TaskFaults, retry_after_header
from ._store import (
    CANCELLED,
    CANCELLING,
    COMPLETED,
    FAILED,
    PREPARING,
    QUEUED,
    RECEIVED,
    RUNNING,
    SCHEDULED,
    SERVING,
    SETTING_UP,
    UPLOADING,
    Change,
    Task,
    rfc3339,
)
from ._stream import Framing, SSEResponse, event_stream, peer_of

if TYPE_CHECKING:
    from ._app import ServerState

#: Store status → hosted status code (HOSTED.md's table).
CODES = {
    RECEIVED: 1,
    QUEUED: 2,
    SCHEDULED: 3,
    PREPARING: 4,
    SERVING: 5,
    SETTING_UP: 6,
    RUNNING: 7,
    CANCELLING: 8,
    UPLOADING: 9,
    COMPLETED: 10,
    FAILED: 11,
    CANCELLED: 12,
}
NAMES = {
    0: "unknown",
    1: "received",
    2: "queued",
    3: "dispatched",
    4: "preparing",
    5: "serving",
    6: "setting_up",
    7: "running",
    8: "cancelling",
    9: "uploading",
    10: "completed",
    11: "failed",
    12: "cancelled",
    13: "rejected",
}
ERROR_CODES = {
    400: "invalid_input",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid_input",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
}
NDJSON = "application/x-ndjson"
ERROR_TYPE = "https://inference.sh/errors/"


class HostedItem(NamedTuple):
    """One stream object, written as an NDJSON line and as an SSE block."""

    line: bytes
    block: bytes


def dumps(value: Any) -> bytes:
    """Compact, ASCII-escaped JSON."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def item(value: Mapping[str, Any]) -> HostedItem:
    """A task-stream object: an NDJSON line, or the ``data`` of an unnamed SSE event."""
    text = dumps(value)
    return HostedItem(text + b"\n", b"data: " + text + b"\n\n")


def typed_item(event: str, data: Any, fields: Optional[list[str]] = None) -> HostedItem:
    """A chat-stream typed event: ``{"event", "data", "fields"?}``; in SSE ``event:`` + ``data:`` of the inner data."""
    value: dict[str, Any] = {"event": event, "data": data}
    if fields is not None:
        value["fields"] = fields
    return HostedItem(dumps(value) + b"\n", b"event: " + event.encode("ascii") + b"\ndata: " + dumps(data) + b"\n\n")


NDJSON_FRAMING: Framing[HostedItem] = Framing(
    frame=lambda it: it.line,
    ping=b'{"type":"heartbeat"}\n',
    malformed=lambda _: b"{not json\n",
)
SSE_FRAMING: Framing[HostedItem] = Framing(
    frame=lambda it: it.block,
    ping=b": heartbeat\n\n",
    malformed=lambda _: b"data: {not json\n\n",
)


def wants_ndjson(accept: str) -> bool:
    """True when ``Accept`` prefers NDJSON to SSE (highest q wins; a tie goes to the one listed first)."""
    best: tuple[float, int, bool] = (0.0, 0, False)
    for index, part in enumerate(accept.split(",")):
        media, *params = [piece.strip() for piece in part.split(";")]
        if media.lower() not in (NDJSON, "text/event-stream"):
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best[0]:
            best = (q, -index, media.lower() == NDJSON)
    return best[2]


def code(task: Task) -> int:
    """The task's hosted status code."""
    return CODES[task.status]


def records(task: Task) -> list[dict[str, Any]]:
    """The task's log records, each ``content`` its lines, each ending in a newline."""
    return [
        {
            "id": record.id,
            "created_at": rfc3339(record.created_at),
            "updated_at": rfc3339(record.updated_at),
            "log_type": record.log_type,
            "content": "".join(line + "\n" for line in record.lines),
        }
        for record in task.records
    ]


def events(task: Task) -> list[dict[str, Any]]:
    """Every status the task went through, in order."""
    return [
        {"id": f"{task.id}-ev{n}", "event_time": rfc3339(moment), "status": CODES[status]}
        for n, (status, moment) in enumerate(task.history, 1)
    ]


def task_dto(task: Task) -> dict[str, Any]:
    """The TaskDTO: what ``GET /tasks/{id}`` answers and a stream opens with."""
    return {
        "id": task.id,
        "status": code(task),
        "app_id": task.app,
        "input": task.input,
        "output": task.output,
        "error": task.error,
        "session_id": None,
        "created_at": rfc3339(task.created_at),
        "updated_at": rfc3339(task.updated_at),
        "events": events(task),
        "logs": records(task),
    }


def task_result(task: Task) -> dict[str, Any]:
    """The task result ``POST /apps/run`` answers."""
    status = code(task)
    return {
        "id": task.id,
        "short_id": task.id[-8:],
        "status": status,
        "status_text": NAMES[status],
        "output": task.output,
        "error": task.error,
        "session_id": None,
        "created_at": rfc3339(task.created_at),
        "updated_at": rfc3339(task.updated_at),
    }


def task_status(task: Task) -> dict[str, Any]:
    """``GET /tasks/{id}/status``."""
    return {"id": task.id, "status": code(task), "updated_at": rfc3339(task.updated_at)}


class HostedWriter:
    """The hosted way to write a task's changes: one partial update per change, deltas as they come."""

    def created(self, task: Task) -> None:
        """Nothing to write: a stream opens with the whole task."""

    def changed(self, task: Task, change: Change) -> int:
        data: dict[str, Any] = {"id": task.id, "status": code(task), "updated_at": rfc3339(task.updated_at)}
        fields = []
        if change.status:
            fields += ["status", "events"]
            data["events"] = events(task)
        if change.logs:
            fields.append("logs")
            data["logs"] = records(task)
        if task.status == COMPLETED:
            fields.append("output")
            data["output"] = task.output
        if task.status == FAILED:
            fields.append("error")
            data["error"] = task.error
        fields.append("updated_at")
        event_id = task.events.append(item({"data": data, "fields": fields}))
        if task.terminal:
            task.events.close()
        return event_id

    def delta(self, task: Task, delta: dict[str, Any]) -> None:
        task.events.append(item({"event": "delta", "data": {"delta": delta, "seq": task.deltas, "resource_id": ""}}))


def hosted_stream(
    request: Request,
    log: EventLog[HostedItem],
    faults: TaskFaults,
    first: Sequence[HostedItem],
) -> Response:
    """Answer a hosted stream request: ``first`` (the current state), then what ``log`` gets from now on.

    NDJSON when ``Accept`` prefers it, else SSE. Raises ``HTTPException`` for a due ``status`` fault.
    """
    state = cast("ServerState", request.app.state.infsh)
    fault = faults.fire("status")
    if fault is not None:
        detail = f"injected fault: {fault.kind} {fault.code}"
        raise HTTPException(fault.code, detail, retry_after_header(fault.retry_after))
    ndjson = wants_ndjson(request.headers.get("accept", ""))
    events = event_stream(
        log,
        faults,
        state.store,
        after=log.last_id,
        heartbeat=state.heartbeat,
        registry=state.registry,
        peer=peer_of(request),
        gauge=state.streams,
        framing=NDJSON_FRAMING if ndjson else SSE_FRAMING,
        first=first,
    )
    if ndjson:
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(events, media_type=NDJSON, headers=headers)
    return cast(Response, SSEResponse(events))


def api_version(request: Request) -> Optional[str]:
    """The request's ``X-API-Version`` (None when absent)."""
    return request.headers.get("x-api-version")


def envelope(request: Request, data: Any, status: int = 200) -> JSONResponse:
    """``data`` in the envelope the request asked for: legacy (no header), bare DTO (2), v3 (anything else)."""
    version = api_version(request)
    if version is None:
        body: Any = {"success": True, "status": status, "data": data}
    elif version.strip() == "2":
        body = data
    else:
        body = {"data": data, "messages": []}
    return JSONResponse(body, status)


def error_type(status: int) -> str:
    """The problem ``type`` of an HTTP error status."""
    return ERROR_TYPE + ERROR_CODES.get(status, "internal_error" if status >= 500 else "invalid_input")
