"""The hosted dialect's routes (HOSTED.md): tasks here, chats in ``_hosted_chats``.

The same store, apps and runner as the v1 routes; only the wire differs:
envelopes chosen by ``X-API-Version``, TaskDTOs, hosted status codes, and a
task stream that opens with the whole task, then sends one partial update
per change (NDJSON or SSE, by ``Accept``), with no ids and no replay.

Choices where HOSTED.md is silent: ``POST /tasks/{id}/cancel`` answers the
task (status 8, cancelling) and ``409`` conflict once it has ended;
``"wait": true`` answers the task result once terminal, or ``422``
(``invalid_input``) for a failed or cancelled task; an app reference may
carry ``@version`` (ignored); the task stream opens even on a finished task
(its one object is the whole terminal task); a ``status`` fault answers the
stream request, an ``overlap`` fault never fires (there is no
``Last-Event-ID``).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._app import _state, _task, accept_run
from ._hosted_chats import ROUTES as CHAT_ROUTES
from ._hosted_wire import envelope, hosted_stream, item, task_dto, task_result, task_status
from ._store import CANCELLED, FAILED


async def run_app(request: Request) -> Response:
    """``POST /apps/run``: the task result; with ``"wait": true`` once the task has ended."""
    task, body = await accept_run(request)
    if body.get("wait") is True:
        store = _state(request).store
        while not task.terminal and not store.stopping:
            await task.events.wait(task.events.last_id, 0.5)
        if task.status in (FAILED, CANCELLED):
            detail = f"task {task.id} {'failed: ' + str(task.error) if task.status == FAILED else 'was cancelled'}"
            raise HTTPException(422, detail)
    return envelope(request, task_result(task))


async def get_task(request: Request) -> Response:
    """``GET /tasks/{id}``: the whole TaskDTO, history and log records included."""
    return envelope(request, task_dto(_task(request)))


async def get_status(request: Request) -> Response:
    """``GET /tasks/{id}/status``."""
    return envelope(request, task_status(_task(request)))


async def cancel_task(request: Request) -> Response:
    """``POST /tasks/{id}/cancel``: the task, now cancelling (409 once it has ended)."""
    state, task = _state(request), _task(request)
    if not state.store.cancel(task):
        raise HTTPException(409, f"task {task.id} already ended")
    return envelope(request, task_dto(task))


async def stream_task(request: Request) -> Response:
    """``GET /tasks/{id}/stream``: the whole task now, then one partial update (or delta) per change."""
    task = _task(request)
    return hosted_stream(request, task.events, task.faults, [item(task_dto(task))])


ROUTES = [
    Route("/apps/run", run_app, methods=["POST"]),
    Route("/tasks/{task_id}", get_task, methods=["GET"]),
    Route("/tasks/{task_id}/status", get_status, methods=["GET"]),
    Route("/tasks/{task_id}/cancel", cancel_task, methods=["POST"]),
    Route("/tasks/{task_id}/stream", stream_task, methods=["GET"]),
    *CHAT_ROUTES,
]
