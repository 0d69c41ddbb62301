"""Every exception the SDK raises, in one tree.

::

    InferenceError                      base of everything below
    ├── UsageError (ValueError)         bad arguments: missing "app", bad config shape
    ├── APIError                        the server answered with an error status
    │   ├── AuthenticationError         401, 403
    │   ├── NotFoundError               404: unknown app, task, chat or tool call
    │   ├── ConflictError               409: e.g. cancelling a finished task
    │   ├── RequirementsNotMet          412: the account lacks a secret or integration (``requirements``)
    │   └── RateLimitError              429 (``retry_after`` in seconds, or None)
    ├── TaskFailed                      the task ended ``failed`` (``task_id``, ``error``)
    │   └── TaskRejected                the hosted service refused to run it (status ``rejected``)
    ├── TaskCancelled                   the task ended ``cancelled`` (``task_id``)
    ├── StreamTimeout (TimeoutError)    the total ``timeout=`` passed
    ├── Cancelled                       the ``CancelToken`` was cancelled
    ├── ConnectionLost                  reconnects exhausted (``task_id``, ``last_event_id``, ``status_code``)
    ├── ProtocolError                   the server broke PROTOCOL.md (no resume)
    ├── AgentError                      an agent turn ended ``failed``
    └── FileTransferError               a file's bytes did not go or come (``url``, ``status_code``)
        ├── UploadError                 the PUT to the upload URL failed
        └── DownloadError               a download failed (``path``: where it was going)

Messages are written for logs and never contain the API key.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = [
    "APIError",
    "AgentError",
    "AuthenticationError",
    "Cancelled",
    "ConflictError",
    "ConnectionLost",
    "DownloadError",
    "FileTransferError",
    "InferenceError",
    "NotFoundError",
    "ProtocolError",
    "RateLimitError",
    "RequirementsNotMet",
    "StreamTimeout",
    "TaskCancelled",
    "TaskFailed",
    "TaskRejected",
    "UploadError",
    "UsageError",
]


_SECRETS: set[str] = set()
_SHORTEST_SECRET = 8


def register_secret(secret: str) -> None:
    """Keep ``secret`` (an API key) out of every error message and attribute from now on.

    Keys shorter than 8 characters (``"test"``, ``"demo"``) are not secrets worth
    garbling messages for.
    """
    if len(secret) >= _SHORTEST_SECRET:
        _SECRETS.add(secret)


def redact(text: str) -> str:
    """``text`` with every registered API key replaced by ``***``."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class InferenceError(Exception):
    """Base class of every error raised by ``inferencesh``.

    Every one pickles with its attributes (so it crosses process boundaries:
    dask, multiprocessing), although most take other arguments than ``args``.
    No message or string attribute ever holds a client's API key, even when a
    server echoes it back: it is replaced by ``***``.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, redact(value) if isinstance(value, str) else value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[InferenceError], args: tuple[Any, ...], state: dict[str, Any]) -> InferenceError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class UsageError(InferenceError, ValueError):
    """An argument is not what the SDK accepts (raised before anything is sent)."""


class APIError(InferenceError):
    """The server answered with an HTTP error status.

    Attributes: ``status_code`` (int), ``title`` and ``detail`` (from the
    problem+json body, or a short excerpt of a non-JSON body), ``type``, and
    ``code``: the error's code, the last path segment of ``type`` (RFC 9457
    problem types of the hosted service end in ``/errors/<code>``) or the
    ``code`` of a legacy ``{"success": false, "error": {...}}`` body; ``""``
    when the server gave none.
    """

    def __init__(
        self,
        status_code: int,
        detail: str = "",
        *,
        title: str = "",
        type: str = "about:blank",
        code: str = "",
    ) -> None:
        self.status_code = status_code
        self.detail = detail
        self.title = title
        self.type = type
        self.code = code or _code_of(type)
        text = f"HTTP {status_code}"
        if title:
            text += f" {title}"
        if detail:
            text += f": {detail}"
        super().__init__(text)


def _code_of(problem_type: str) -> str:
    """The last path segment of a problem ``type`` URI (``".../errors/not_found"`` → ``"not_found"``)."""
    if not problem_type or problem_type == "about:blank":
        return ""
    return problem_type.rstrip("/").rsplit("/", 1)[-1]


class AuthenticationError(APIError):
    """401 (missing or unknown API key) or 403 (forbidden)."""


class NotFoundError(APIError):
    """404: the app, task, chat or tool call does not exist."""


class ConflictError(APIError):
    """409: the request conflicts with the resource's state (e.g. cancelling a finished task)."""


class RateLimitError(APIError):
    """429: rate limited; ``retry_after`` is the server's ``Retry-After`` in seconds, or None."""

    def __init__(
        self, status_code: int = 429, detail: str = "", *, retry_after: Optional[float] = None, **problem: str
    ) -> None:
        super().__init__(status_code, detail, **problem)  # title, type, code
        self.retry_after = retry_after


class RequirementsNotMet(APIError):
    """412: the account has not met what the app needs (HOSTED.md).

    ``requirements`` is the list of dicts the server sent (``{"type":
    "secret" | "integration" | ..., "key", "message", "action"?}``).
    """

    def __init__(
        self,
        status_code: int = 412,
        detail: str = "",
        *,
        requirements: Optional[list[dict[str, Any]]] = None,
        **problem: str,
    ) -> None:
        super().__init__(status_code, detail, **problem)  # title, type, code
        self.requirements = list(requirements or [])


class TaskFailed(InferenceError):
    """The task ended with status ``failed``; ``error`` is the server's message."""

    def __init__(self, task_id: str, error: Optional[str]) -> None:
        self.task_id = task_id
        self.error = error
        super().__init__(f"task {task_id} failed: {error or 'no error message'}")


class TaskRejected(TaskFailed):
    """The task ended with status ``rejected``: the hosted service refused to run it (e.g. no balance)."""

    def __init__(self, task_id: str, error: Optional[str]) -> None:
        super().__init__(task_id, error)
        self.args = (f"task {task_id} was rejected: {error or 'no reason given'}",)


class TaskCancelled(InferenceError):
    """The task ended with status ``cancelled``."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id} was cancelled")


class StreamTimeout(InferenceError, TimeoutError):
    """The total deadline given as ``timeout=`` (seconds since the call) passed."""

    def __init__(self, timeout: float, task_id: Optional[str] = None) -> None:
        self.timeout = timeout
        self.task_id = task_id
        where = f" (task {task_id})" if task_id else ""
        super().__init__(f"no result within the {timeout:g} s timeout{where}")


class Cancelled(InferenceError):
    """The ``CancelToken`` passed as ``cancel=`` was cancelled (the seed's AbortError)."""

    def __init__(self, task_id: Optional[str] = None) -> None:
        self.task_id = task_id
        where = f" (task {task_id})" if task_id else ""
        super().__init__(f"cancelled by the caller{where}")


class ConnectionLost(InferenceError):
    """Reconnecting failed too many times in a row.

    ``task_id`` is the task (or chat) whose stream was lost: set whenever the
    run was accepted. ``last_event_id`` is the id of the last event handed to
    the caller (None if none was, and on hosted streams, which have no ids);
    pass both to ``client.tasks.stream(task_id, last_event_id=...)`` to pick
    the stream up again later without loss. ``status_code`` is the HTTP
    status of the last attempt when the server answered with an error (429,
    5xx), else None; that typed ``APIError`` (a ``RateLimitError`` for 429) is
    also ``error`` and the exception's ``__cause__``.
    """

    def __init__(
        self,
        reason: str,
        *,
        task_id: Optional[str],
        last_event_id: Optional[int],
        error: Optional[APIError] = None,
    ) -> None:
        self.task_id = task_id
        self.last_event_id = last_event_id
        self.reason = reason
        self.error = error
        self.status_code: Optional[int] = None if error is None else error.status_code
        what = f"stream of {task_id}" if task_id else "connection"
        where = "" if last_event_id is None else f" (last event id {last_event_id})"
        super().__init__(f"{what} lost after retries{where}: {reason}")


class ProtocolError(InferenceError):
    """The server broke the wire protocol (PROTOCOL.md); the stream is not resumed.

    ``event_id`` names the offending event when it has one.
    """

    def __init__(self, message: str, *, event_id: Optional[str] = None) -> None:
        self.event_id = event_id
        where = f" (event id {event_id!r})" if event_id is not None else ""
        super().__init__(message + where)


class AgentError(InferenceError):
    """An agent turn ended with status ``failed``; ``error`` is the server's message."""

    def __init__(self, chat_id: str, error: Optional[str]) -> None:
        self.chat_id = chat_id
        self.error = error
        super().__init__(f"agent turn in chat {chat_id} failed: {error or 'no error message'}")


class FileTransferError(InferenceError):
    """A file's bytes could not be sent or fetched, after the retries.

    ``url`` is the address without its query (a pre-signed URL's query is a
    credential); ``status_code`` is the HTTP status when the host answered
    with an error, None for a network failure or a short body.
    """

    def __init__(self, message: str, *, url: str, status_code: Optional[int] = None) -> None:
        self.url = url
        self.status_code = status_code
        super().__init__(message)


class UploadError(FileTransferError):
    """The ``PUT`` of a file's bytes to its upload URL failed."""


class DownloadError(FileTransferError):
    """A download failed; ``path`` is the file it was going to (nothing is left under that name)."""

    def __init__(self, message: str, *, url: str, status_code: Optional[int] = None, path: str = "") -> None:
        super().__init__(message, url=url, status_code=status_code)
        self.path = path
