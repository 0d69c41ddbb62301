"""``Client`` and ``inference()``: the SDK's front door.

A client owns one pooled ``requests.Session`` (reused by every call, safe to
share between threads) and builds requests, while ``_transport`` moves bytes,
``_stream`` follows event streams and ``_watchdog`` enforces deadlines and
cancellation.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional, Union, overload

import attrs

from . import _many
from ._dialects import accept_for
from ._errors import UsageError
from ._settings import Settings, check_key
from ._stream import TaskStream, cancel_task, open_task_stream, read_task
from ._transport import DEFAULT_BASE_URL, Transport, check_json, quote_id
from ._upload import json_view, upload_input
from ._watchdog import CancelToken, _Abort
from .agent import Agent
from .files import Files
from .models import Task
from .progress import _force_for, follow

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Literal

__all__ = ["Client", "Settings", "Tasks", "inference"]


def _final_task(accepted: Task, stream: TaskStream) -> Optional[Task]:
    """The finished task from what the stream delivered (no extra request), or None if it did not end."""
    if stream.final_task is not None:
        return stream.final_task
    result = stream.result
    if result is None:
        return None
    return attrs.evolve(
        accepted,
        status=result.status,
        raw_output=result.output,
        error=result.error,
        logs=tuple(stream.logs),
        progress=stream.progress,
        updated_at=result.timestamp or accepted.updated_at,
    )


def _run_body(config: Any) -> dict[str, Any]:
    if not isinstance(config, Mapping):
        raise UsageError(f"config must be a mapping like {{'app': ..., 'input': {{...}}}}, not {type(config).__name__}")
    app = config.get("app")
    if not isinstance(app, str) or not app.strip():
        raise UsageError("config['app'] must be a non-empty string such as 'infsh/flux-schnell'")
    body = dict(config)
    body.setdefault("input", {})
    if not isinstance(body["input"], Mapping):
        raise UsageError(f"config['input'] must be a mapping, not {type(body['input']).__name__}")
    if body.get("setup") is None:
        body.pop("setup", None)  # PROTOCOL.md: "setup"?: obj
    elif not isinstance(body["setup"], Mapping):
        raise UsageError(f"config['setup'] must be a mapping, not {type(body['setup']).__name__}")
    body["input"] = dict(body["input"])
    check_json(json_view(body), "config")  # files (File, pathlib.Path) are uploaded by run()
    return body


class Tasks:
    """Calls on existing tasks by id: ``client.tasks.get/cancel/stream``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def get(self, task_id: str, *, timeout: Optional[float] = None) -> Task:
        """``GET /tasks/{id}`` → ``Task``. Raises ``NotFoundError`` for an unknown id."""
        answer = self._client._transport.answer_within(timeout, "GET", f"/tasks/{quote_id(task_id, 'task_id')}")
        return read_task(answer, self._client.settings.dialect)[0]

    def cancel(self, task_id: str, *, timeout: Optional[float] = None) -> Task:
        """``POST /tasks/{id}/cancel`` → the cancelled ``Task``.

        Retried on 408/429/5xx and network errors. Raises ``ConflictError``
        (409) when the task had already finished.
        """
        return cancel_task(
            self._client._transport,
            task_id,
            timeout=30.0 if timeout is None else timeout,
            dialect=self._client.settings.dialect,
        )

    def stream(
        self,
        task_id: str,
        last_event_id: Optional[int] = None,
        *,
        timeout: Optional[float] = None,
        cancel: Optional[CancelToken] = None,
        cancel_task_on_abort: bool = False,
    ) -> TaskStream:
        """Follow an existing task; with ``last_event_id`` only the updates after it.

        Returns a ``TaskStream`` (nothing is sent until it is iterated).
        ``timeout`` (seconds) and ``cancel`` work as for ``Client.run``.
        """
        quote_id(task_id, "task_id")
        if last_event_id is not None and (
            isinstance(last_event_id, bool) or not isinstance(last_event_id, int) or last_event_id < 0
        ):
            raise UsageError(f"last_event_id must be an int >= 0 or None, not {last_event_id!r}")
        scope = _Abort(timeout, cancel)
        scope.task_id = task_id
        return self._client._stream(task_id, scope, last_event_id, cancel_task_on_abort, self._client.settings.dialect)


class Client(_many.ManyMixin):
    """A client of the inference.sh API (or any server speaking PROTOCOL.md).

    ``api_key`` falls back to ``INFERENCE_API_KEY`` and ``base_url`` to
    ``INFERENCE_BASE_URL``, then ``https://api.inference.sh``. Further keyword
    arguments are ``Settings`` fields. Usable as a context manager; ``close()``
    releases the pooled connections. Thread-safe: many runs may share one client.

    A client pickles (for dask, multiprocessing) to its ``settings`` and
    rebuilds its session where it is unpickled. The key is not pickled: the
    copy reads ``INFERENCE_API_KEY`` from its own environment, unless the
    client was made with ``pickle_api_key=True``, which writes the key into
    the pickle (only for pickles that stay on trusted machines).
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        *,
        pickle_api_key: bool = False,
        **settings: Any,
    ) -> None:
        if api_key is None:
            api_key = os.environ.get("INFERENCE_API_KEY") or None
        check_key(api_key)
        if base_url is None:
            base_url = os.environ.get("INFERENCE_BASE_URL") or DEFAULT_BASE_URL
        try:
            self.settings = Settings(base_url=base_url, **settings)
        except TypeError as exc:
            raise UsageError(str(exc)) from None
        self._api_key = api_key
        self._pickle_api_key = bool(pickle_api_key)
        self._transport = self._make_transport()
        self.tasks = Tasks(self)

    def __getstate__(self) -> dict[str, Any]:
        # A pickle (dask, multiprocessing) carries the configuration; the key only when asked.
        return {
            "settings": self.settings,
            "api_key": self._api_key if self._pickle_api_key else None,
            "pickle_api_key": self._pickle_api_key,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.settings = state["settings"]
        self._pickle_api_key = state["pickle_api_key"]
        self._api_key = state["api_key"] or os.environ.get("INFERENCE_API_KEY") or None
        check_key(self._api_key)
        self._transport = self._make_transport()
        self.tasks = Tasks(self)

    def _make_transport(self) -> Transport:
        s = self.settings
        return Transport(
            api_key=self._api_key,
            base_url=s.base_url,
            pool_maxsize=s.pool_maxsize,
            connect_timeout=s.connect_timeout,
            request_timeout=s.request_timeout,
            max_retries=s.max_retries,
            backoff_initial=s.backoff_initial,
            backoff_max=s.backoff_max,
            max_retry_delay=s.max_retry_delay,
        )

    @property
    def base_url(self) -> str:
        """The server's base URL, without a trailing slash."""
        return self.settings.base_url

    @property
    def files(self) -> Files:
        """``client.files.upload(...)``: upload a file and get its ``UploadedFile`` (``uri``...)."""
        return Files(self)

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return f"<inferencesh.Client base_url={self.base_url!r} api_key={key}>"

    # -- running ----------------------------------------------------------

    @overload
    def run(
        self,
        config: Mapping[str, Any],
        *,
        wait: bool = ...,
        stream: Literal[False] = ...,
        timeout: Optional[float] = ...,
        cancel: Optional[CancelToken] = ...,
        cancel_task_on_abort: bool = ...,
        progress: Union[bool, Literal["always"]] = ...,
    ) -> Task: ...

    @overload
    def run(
        self,
        config: Mapping[str, Any],
        *,
        wait: bool = ...,
        stream: Literal[True],
        timeout: Optional[float] = ...,
        cancel: Optional[CancelToken] = ...,
        cancel_task_on_abort: bool = ...,
        progress: Union[bool, Literal["always"]] = ...,
    ) -> TaskStream: ...

    def run(
        self,
        config: Mapping[str, Any],
        *,
        wait: bool = True,
        stream: bool = False,
        timeout: Optional[float] = None,
        cancel: Optional[CancelToken] = None,
        cancel_task_on_abort: bool = False,
        progress: Union[bool, Literal["always"]] = False,
    ) -> Union[Task, TaskStream]:
        """Start a task: ``config`` is ``{"app": str, "input": {...}, "setup"?: {...}}``.

        * default: blocks until the task is terminal and returns the ``Task``
          (API.md); its ``output`` raises ``TaskFailed`` / ``TaskCancelled``
          when the task failed or was cancelled (``task.raise_for_status()``
          raises them at once);
        * ``wait=False``: returns the ``Task`` as accepted (``id``, ``status``);
          with ``stream=True`` or ``progress`` it is a ``UsageError``;
        * ``stream=True``: returns a ``TaskStream`` of ``TaskUpdate`` objects.

        ``timeout`` is one total deadline in seconds from this call, over the
        POST, the reads, reconnects and backoff waits: ``StreamTimeout`` when it
        passes. ``cancel`` is a ``CancelToken``: ``Cancelled`` when it fires.
        Files in the input (``File``, ``pathlib.Path``, nested) are uploaded first and replaced by their
        ``uri`` (``UploadError``). ``cancel_task_on_abort`` also cancels the task on the server after a
        timeout, a cancel or Ctrl-C. ``progress=True`` shows a live bar (tqdm:
        a widget in Jupyter, text on stderr in a terminal, nothing otherwise);
        ``progress="always"`` draws it even when stderr is not a terminal.
        ``POST /apps/run`` carries a fresh ``Idempotency-Key`` that its retries
        reuse, so a lost answer never starts a second task. Raises
        ``UsageError`` for a bad config and ``APIError`` subclasses for error
        answers (``NotFoundError`` for an unknown app).
        """
        body = _run_body(config)
        force = _force_for(progress)
        if not wait and (stream or progress):
            raise UsageError("wait=False returns at once: it cannot be combined with stream=True or progress")
        scope = _Abort(timeout, cancel)
        try:
            body = upload_input(self._transport, body, scope, cancel)
            answer = self._transport.call_answer(
                "POST", "/apps/run", scope=scope, body=body, headers={"Idempotency-Key": uuid.uuid4().hex}
            )
            task, dialect = read_task(answer, self.settings.dialect)
            if not task.app or task.input is None:  # the hosted run answer holds neither
                given = body["input"] if task.input is None else task.input
                task = attrs.evolve(task, app=task.app or body["app"], input=given)
        except BaseException:
            scope.close()
            raise
        scope.task_id = task.id
        if not stream and not wait:
            scope.close()
            return task
        updates = self._stream(task.id, scope, None, cancel_task_on_abort, dialect)
        if force is not False:
            updates = follow(updates, force=force)
        if stream:
            return updates
        with updates:
            for _ in updates:
                pass
        return _final_task(task, updates) or self.tasks.get(task.id, timeout=scope.remaining())

    def _stream(
        self,
        task_id: str,
        scope: _Abort,
        last_event_id: Optional[int],
        cancel_task_on_abort: bool,
        dialect: Optional[str],
    ) -> TaskStream:
        s = self.settings
        return open_task_stream(
            self._transport,
            task_id,
            scope,
            last_event_id=last_event_id,
            max_reconnects=self.settings.max_reconnects,
            idle_timeout=self.settings.idle_timeout,
            max_event_bytes=self.settings.max_event_bytes,
            cancel_task_on_abort=cancel_task_on_abort,
            dialect=dialect,
            accept=accept_for(s.stream_format, dialect),
            reconcile_interval=s.reconcile_interval,
        )

    # -- agents -----------------------------------------------------------

    def agent(self, ref: str, *, chat_id: Optional[str] = None) -> Agent:
        """An ``Agent`` for ``ref`` (``"org/name@version"``), optionally continuing ``chat_id``."""
        return Agent(self, ref, chat_id)

    # -- lifetime ---------------------------------------------------------

    def close(self) -> None:
        """Release the pooled connections. Streams still open keep working until closed."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


def inference(api_key: Optional[str] = None, base_url: Optional[str] = None, **settings: Any) -> Client:
    """Make a ``Client`` (the seed's ``inference({apiKey})``); same arguments as ``Client``."""
    return Client(api_key=api_key, base_url=base_url, **settings)
