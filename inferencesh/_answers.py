"""What servers answer, made typed: error answers, ``Retry-After``, envelopes, failure descriptions.

Pure mapping from a ``requests.Response`` (or a network exception) to what
the SDK's caller sees; no requests are made here. Messages never hold an API
key (``_errors.redact``).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import math
import re
import socket
import time
from typing import Any, Optional
from urllib.parse import urlsplit

import requests

from ._errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    RequirementsNotMet,
    redact,
)

_ERROR_BODY_LIMIT = 64 * 1024


def parse_retry_after(value: Optional[str], cap: float) -> Optional[float]:
    """``Retry-After`` as seconds (delta-seconds or an HTTP-date), clamped to 0..cap; None if absent or garbage."""
    if not value:
        return None
    value = value.strip()
    seconds: Optional[float] = None
    if re.fullmatch(r"\d+(\.\d+)?", value):
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), cap)


def _excerpt(text: str, limit: int = 200) -> str:
    text = re.sub(r"<[^>]*>", " ", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_from_response(response: requests.Response, max_retry_delay: float, streamed: bool) -> APIError:
    """Map an error answer to its typed ``APIError`` (problem+json ``detail``, or a body excerpt).

    Of a ``streamed`` response at most 64 KiB of the body is read.
    """
    status = response.status_code
    if streamed:
        body = response.raw.read(_ERROR_BODY_LIMIT, decode_content=True)
    else:
        body = response.content[:_ERROR_BODY_LIMIT]
    title, detail, type_ = response.reason or "", "", "about:blank"
    try:
        problem = json.loads(body.decode("utf-8", "replace")) if body else None
    except ValueError:
        problem = None
    code = ""
    requirements: Any = None
    if isinstance(problem, dict):
        title = str(problem.get("title") or title)
        detail = str(problem.get("detail") or "")
        type_ = str(problem.get("type") or type_)
        requirements = problem.get("errors")
        legacy = problem.get("error")  # HOSTED.md legacy envelope: {"success": false, "error": {code, message}}
        if isinstance(legacy, dict):
            code = str(legacy.get("code") or "")
            detail = detail or str(legacy.get("message") or "")
        elif isinstance(legacy, str):
            detail = detail or legacy
    elif body:
        detail = _excerpt(body.decode("utf-8", "replace"))
    kwargs: dict[str, Any] = {"title": title, "type": type_, "code": code}
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), max_retry_delay)
        return RateLimitError(status, detail, retry_after=retry_after, **kwargs)
    if status == 412:
        listed = [item for item in requirements if isinstance(item, dict)] if isinstance(requirements, list) else []
        return RequirementsNotMet(status, detail, requirements=listed, **kwargs)
    cls = {401: AuthenticationError, 403: AuthenticationError, 404: NotFoundError, 409: ConflictError}.get(
        status, APIError
    )
    return cls(status, detail, **kwargs)


def is_retryable_status(status: int) -> bool:
    """PROTOCOL.md: 408, 429 and 5xx are retried; other 4xx are not."""
    return status in (408, 429) or 500 <= status <= 599


def envelope(response: requests.Response) -> tuple[Any, Optional[str]]:
    """The payload of a success answer, and the dialect its envelope shows ("hosted", "v1" or None).

    Accepts every envelope of PROTOCOL.md and HOSTED.md: ``{"data": ...}``
    (PROTOCOL.md, or HOSTED.md v3 without messages: dialect None),
    ``{"data", "messages"}`` (v3), ``{"success", "status", "data"}``
    (legacy; ``"success": false`` raises ``APIError`` with the body's
    ``error``), a bare object (HOSTED.md with ``X-API-Version: 2``), and an
    empty body (None; HOSTED.md: cancel, tool results and stop may answer
    nothing). Raises ``ProtocolError`` for a body that is not JSON.
    """
    if not response.content.strip():
        return None, None
    try:
        payload = response.json()
    except (ValueError, RecursionError):
        raise ProtocolError(
            f"expected a JSON body from {response.request.method} {urlsplit(response.url).path}, "
            f"got {response.headers.get('Content-Type', 'no content type')}: {_excerpt(response.text)}"
        ) from None
    if not isinstance(payload, dict):
        raise ProtocolError(f"expected a JSON object, got {_excerpt(repr(payload))}")
    if "success" in payload and isinstance(payload["success"], bool):
        if not payload["success"]:
            raise _legacy_error(response, payload)
        return payload.get("data"), "hosted"
    if "data" in payload:
        hosted = "messages" in payload
        return payload["data"], ("hosted" if hosted else None)
    return payload, "hosted"  # a bare DTO


def _legacy_error(response: requests.Response, payload: dict[str, Any]) -> APIError:
    error = payload.get("error")
    code, message = "", ""
    if isinstance(error, dict):
        code, message = str(error.get("code") or ""), str(error.get("message") or "")
    elif isinstance(error, str):
        message = error
    status = payload.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or status < 400:
        status = response.status_code if response.status_code >= 400 else 400
    return APIError(status, message or "the server answered success: false", code=code)


def _innermost(exc: BaseException) -> BaseException:
    """Follow urllib3's ``reason`` / ``args`` wrapping and Python's cause chain to the root failure."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nested = getattr(exc, "reason", None)
        if not isinstance(nested, BaseException):
            nested = next((arg for arg in exc.args if isinstance(arg, BaseException)), None)
        if nested is None:
            nested = exc.__cause__ or exc.__context__
        if nested is None:
            break
        exc = nested
    return exc


def describe(exc: BaseException) -> str:
    """A short, key-free description of a network failure, for logs and error messages."""
    root = _innermost(exc)
    if isinstance(root, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(root, ConnectionRefusedError) or "Connection refused" in str(root):
        return "connection refused"
    if isinstance(root, http.client.IncompleteRead):
        return "connection closed in the middle of a chunk"
    if isinstance(root, (socket.timeout, TimeoutError)) or "timed out" in str(root):
        return "no data within the read timeout"
    text = redact(f"{type(root).__name__}: {root}")
    text = re.sub(r"Bearer\s+\S+", "Bearer ***", text)
    return text if len(text) <= 300 else text[:297] + "..."
