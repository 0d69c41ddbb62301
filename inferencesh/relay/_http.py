"""Small WSGI helpers: answers, request bodies with a size cap, CORS, error mapping.

Nothing here knows about routes; ``_wsgi`` composes these.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Optional

from .._errors import APIError, AuthenticationError, ConnectionLost, ProtocolError, RateLimitError, StreamTimeout
from ._validate import RelayRefusal

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

Headers = list[tuple[str, str]]

#: Headers on every answer: never cached, never sniffed into another type.
BASE_HEADERS: Headers = [("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")]
_READ_CHUNK = 64 * 1024


def status_line(code: int) -> str:
    """``"404 Not Found"`` for 404."""
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


def respond_json(
    start_response: StartResponse,
    code: int,
    payload: Any,
    *,
    content_type: str = "application/json",
    extra: Sequence[tuple[str, str]] = (),
) -> list[bytes]:
    """Start a JSON answer and return its body (one bytes item)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *BASE_HEADERS, *extra]
    start_response(status_line(code), headers)
    return [body]


def respond_problem(
    start_response: StartResponse, code: int, detail: str, extra: Sequence[tuple[str, str]] = ()
) -> list[bytes]:
    """Start an ``application/problem+json`` answer (PROTOCOL.md's error shape)."""
    problem = {"type": "about:blank", "title": status_line(code).split(" ", 1)[1], "status": code, "detail": detail}
    return respond_json(start_response, code, problem, content_type="application/problem+json", extra=extra)


def read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """The request body, at most ``limit`` bytes.

    Raises ``RelayRefusal``: 413 when the body is longer than ``limit`` (a
    declared ``Content-Length`` over the cap is refused before any byte is
    read), 411 when there is neither a length nor a server-terminated input,
    400 for a malformed ``Content-Length``.
    """
    declared = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if declared:
        if not declared.isdigit():
            raise RelayRefusal(400, "Content-Length is not a number")
        length = int(declared)
        if length > limit:
            raise RelayRefusal(413, f"the request body is larger than {limit} bytes")
        return _read_exactly(stream, length)
    if not environ.get("wsgi.input_terminated"):
        raise RelayRefusal(411, "a Content-Length is required")
    data = _read_exactly(stream, limit + 1)
    if len(data) > limit:
        raise RelayRefusal(413, f"the request body is larger than {limit} bytes")
    return data


def _read_exactly(stream: Any, size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left > 0:
        chunk = stream.read(min(left, _READ_CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def header(environ: WSGIEnvironment, name: str) -> Optional[str]:
    """A request header by its HTTP name (``"Last-Event-ID"``), or None."""
    key = "HTTP_" + name.upper().replace("-", "_")
    value = environ.get(key)
    return value if isinstance(value, str) else None


class Cors:
    """CORS answers for the configured origins only; none at all by default.

    ``origins`` are exact origins (``"https://app.example.com"``) or ``"*"``.
    Credentials are never allowed: the relay needs no cookies.
    """

    METHODS = "GET, POST, PUT, DELETE, OPTIONS"
    ALLOW_HEADERS = (
        "Content-Type, Last-Event-ID, Idempotency-Key, x-inf-target-url, X-Client-Source, X-API-Version, Accept"
    )

    def __init__(self, origins: Iterable[str]) -> None:
        if isinstance(origins, str):
            origins = [origins]
        self.origins = frozenset(origin.rstrip("/") for origin in origins)

    @property
    def enabled(self) -> bool:
        return bool(self.origins)

    def allowed(self, origin: Optional[str]) -> bool:
        return bool(origin) and ("*" in self.origins or origin in self.origins)

    def headers(self, environ: WSGIEnvironment) -> Headers:
        """``Access-Control-Allow-Origin`` (and ``Vary``) for an allowed ``Origin``, else nothing."""
        origin = header(environ, "Origin")
        if not self.enabled or origin is None or not self.allowed(origin):
            return []
        return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]

    def preflight(self, environ: WSGIEnvironment) -> Headers:
        """The extra headers of a preflight answer for an allowed origin."""
        return [
            *self.headers(environ),
            ("Access-Control-Allow-Methods", self.METHODS),
            ("Access-Control-Allow-Headers", self.ALLOW_HEADERS),
            ("Access-Control-Max-Age", "600"),
        ]


def upstream_refusal(exc: Exception, scrub: Any) -> RelayRefusal:
    """Map an SDK error from the upstream call to what the browser gets.

    4xx answers keep their status and detail (401 becomes 502: the browser
    holds no key, the relay's own key was refused); 5xx, network trouble and
    protocol breaches become 502, a deadline 504; 429 keeps ``Retry-After``.
    ``scrub`` removes the key from any text (defence in depth).
    """
    if isinstance(exc, RateLimitError):
        extra = {} if exc.retry_after is None else {"Retry-After": str(max(1, round(exc.retry_after)))}
        return RelayRefusal(429, scrub(exc.detail or "rate limited upstream"), extra)
    if isinstance(exc, AuthenticationError) and exc.status_code == 401:
        return RelayRefusal(502, "the upstream refused the relay's API key")
    if isinstance(exc, APIError):
        if 400 <= exc.status_code < 500:
            return RelayRefusal(exc.status_code, scrub(exc.detail or exc.title or "refused upstream"))
        return RelayRefusal(502, f"the upstream answered {exc.status_code}")
    if isinstance(exc, StreamTimeout):
        return RelayRefusal(504, "the upstream did not answer in time")
    if isinstance(exc, (ConnectionLost, ProtocolError)):
        return RelayRefusal(502, "the upstream could not be reached or answered badly")
    return RelayRefusal(500, "the relay failed")
