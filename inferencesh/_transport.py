"""The only module that touches requests and urllib3.

It owns the pooled ``requests.Session`` (one per client), the headers every
call carries (``Authorization: Bearer``, ``User-Agent``), the mapping of HTTP
answers to the typed errors of ``_errors``, and the retry policies (tenacity)
for single calls. Connections made here register with the caller's abort scope
(``_watchdog``) while a request is under way, so a deadline or a cancel can
shut the socket down and wake a blocked read at once.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import math
import re
import socket
import time
from typing import Any, Callable, Optional
from urllib.parse import quote, urlsplit

import requests
import requests.auth
import tenacity
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ._errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    ConnectionLost,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    UsageError,
    redact,
)
from ._version import __version__
from ._watchdog import _Abort, current_scope

log = logging.getLogger("inferencesh.retry")

DEFAULT_BASE_URL = "https://api.inference.sh"
USER_AGENT = f"inferencesh-python/{__version__}"
_ERROR_BODY_LIMIT = 64 * 1024


class _ScopedConnectionMixin:
    """Registers the connection with the calling thread's abort scope for each request."""

    sock: Any

    def request(self, *args: Any, **kwargs: Any) -> None:
        scope = current_scope()
        if scope is not None:
            scope.attach(self)
        super().request(*args, **kwargs)  # type: ignore[misc]

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        scope = current_scope()
        if scope is not None:
            # A scope that fired while the connect was under way had no socket to shut down yet.
            scope.attach(self)


class _HTTPConnection(_ScopedConnectionMixin, HTTPConnection):
    pass


class _HTTPSConnection(_ScopedConnectionMixin, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def close(self) -> None:
        # Recent urllib3 (2.x) only forgets the pools here and lets each one close its idle
        # connections when it is garbage collected; a pool still referenced (by a finished
        # response in a pending exception's traceback, say) would keep them open. Close the
        # pools now: idle connections go at once, ones in use are closed when handed back.
        pools = self.poolmanager.pools
        for key in list(pools.keys()):
            pool = pools.get(key)
            if pool is not None:
                pool.close()
        super().close()


class _BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <key>`` on every request; its repr does not show the key."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._key}"
        return request

    def __repr__(self) -> str:
        return "<BearerAuth ***>"


class Retryable(Exception):
    """Internal: a failure worth another attempt; ``error`` is what the caller gets if none is left."""

    def __init__(self, error: Exception, retry_after: Optional[float] = None, reason: str = "") -> None:
        super().__init__(reason or str(error))
        self.error = error
        self.retry_after = retry_after


def normalise_base_url(base_url: str) -> str:
    """Check ``base_url`` is an http(s) URL and drop a trailing slash; ``UsageError`` otherwise."""
    if not isinstance(base_url, str):
        raise UsageError(f"base_url must be a string, not {type(base_url).__name__}")
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
    if parts.username or parts.password:
        raise UsageError("base_url must not hold credentials; pass api_key= instead")
    return base_url.strip().rstrip("/")


def check_json(value: Any, what: str) -> None:
    """Raise ``UsageError`` unless ``value`` encodes as strict JSON (no NaN, no cycles, no other types)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise UsageError(f"{what} is not JSON-serialisable: {exc}") from None


def quote_id(value: str, what: str = "id") -> str:
    """URL-quote an opaque id for a path segment (PROTOCOL.md: the client URL-quotes it)."""
    if not isinstance(value, str) or not value:
        raise UsageError(f"{what} must be a non-empty string, not {value!r}")
    return quote(value, safe="")


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
    if isinstance(problem, dict):
        title = str(problem.get("title") or title)
        detail = str(problem.get("detail") or "")
        type_ = str(problem.get("type") or type_)
    elif body:
        detail = _excerpt(body.decode("utf-8", "replace"))
    kwargs: dict[str, Any] = {"title": title, "type": type_}
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), max_retry_delay)
        return RateLimitError(status, detail, retry_after=retry_after, **kwargs)
    cls = {401: AuthenticationError, 403: AuthenticationError, 404: NotFoundError, 409: ConflictError}.get(
        status, APIError
    )
    return cls(status, detail, **kwargs)


def is_retryable_status(status: int) -> bool:
    """PROTOCOL.md: 408, 429 and 5xx are retried; other 4xx are not."""
    return status in (408, 429) or 500 <= status <= 599


class _BackoffWait(tenacity.wait.wait_base):
    """max(the server's delay — ``Retry-After`` or ``retry:`` — , exponential backoff with jitter), capped."""

    def __init__(
        self, backoff: tenacity.wait.wait_base, server_delay: Callable[[], Optional[float]], cap: float
    ) -> None:
        self.backoff = backoff
        self.server_delay = server_delay
        self.cap = cap

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        floor = self.server_delay() or 0.0
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, Retryable) and error.retry_after is not None:
            floor = max(floor, error.retry_after)
        return float(min(self.cap, max(floor, self.backoff(retry_state))))


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None else None
    wait = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
    log.warning("attempt %d failed (%s); next attempt in %.2f s", retry_state.attempt_number, error, wait)


def retry_policy(
    *,
    attempts: int,
    scope: _Abort,
    backoff_initial: float,
    backoff_max: float,
    max_retry_delay: float,
    server_delay: Callable[[], Optional[float]] = lambda: None,
) -> tenacity.Retrying:
    """Retry ``Retryable`` failures up to ``attempts`` attempts in all, waiting
    max(server delay, exponential backoff with jitter), sleeping on the scope so
    that a timeout or cancel cuts the wait short."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(Retryable),
        stop=tenacity.stop_after_attempt(attempts),
        wait=_BackoffWait(
            tenacity.wait_exponential(multiplier=backoff_initial, max=backoff_max)
            + tenacity.wait_random(0, backoff_initial),
            server_delay,
            max_retry_delay,
        ),
        sleep=scope.sleep,
        before_sleep=_log_retry,
        reraise=True,
    )


class Transport:
    """A pooled session bound to one base URL and key, with typed errors and retries."""

    def __init__(
        self,
        *,
        api_key: Optional[str],
        base_url: str,
        pool_maxsize: int,
        connect_timeout: float,
        request_timeout: float,
        max_retries: int,
        backoff_initial: float,
        backoff_max: float,
        max_retry_delay: float,
    ) -> None:
        self.base_url = base_url
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.max_retries = max_retries
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_retry_delay = max_retry_delay
        self.session = requests.Session()
        # trust_env stays on (proxies, CA bundles from the environment, as requests users expect);
        # an auth object keeps a ~/.netrc entry from replacing the key.
        self._retired: list[requests.adapters.BaseAdapter] = []
        adapter = _Adapter(pool_connections=4, pool_maxsize=pool_maxsize)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        if api_key:
            self.session.auth = _BearerAuth(api_key)

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r})"

    def close(self) -> None:
        self.session.close()
        for adapter in self._retired:
            adapter.close()
        self._retired.clear()

    def resize_pool(self, size: int) -> None:
        """Keep up to ``size`` connections per host from now on.

        urllib3 fixes a host pool's size when it creates it, so a fresh adapter
        is mounted; connections already in use finish on the old one, which
        ``close()`` closes too.
        """
        adapter = _Adapter(pool_connections=4, pool_maxsize=size)
        self._retired.extend({id(a): a for a in self.session.adapters.values()}.values())
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def policy(
        self, scope: _Abort, server_delay: Callable[[], Optional[float]] = lambda: None, attempts: Optional[int] = None
    ) -> tenacity.Retrying:
        return retry_policy(
            attempts=(self.max_retries + 1) if attempts is None else attempts,
            scope=scope,
            backoff_initial=self.backoff_initial,
            backoff_max=self.backoff_max,
            max_retry_delay=self.max_retry_delay,
            server_delay=server_delay,
        )

    def _timeout(self, scope: _Abort, read: float) -> tuple[float, float]:
        remaining = scope.remaining()
        connect = self.connect_timeout if remaining is None else max(0.001, min(self.connect_timeout, remaining))
        return connect, read

    def send(
        self,
        method: str,
        path: str,
        *,
        scope: _Abort,
        body: Any = None,
        headers: Optional[dict[str, str]] = None,
        stream: bool = False,
        read_timeout: Optional[float] = None,
    ) -> requests.Response:
        """One HTTP exchange; network failures become ``Retryable``, error statuses ``APIError`` or ``Retryable``."""
        scope.check()
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        try:
            with scope.bound():
                response = self.session.request(
                    method,
                    self.base_url + path,
                    data=data,
                    headers={"Content-Type": "application/json", **(headers or {})} if body is not None else headers,
                    stream=stream,
                    timeout=self._timeout(scope, self.request_timeout if read_timeout is None else read_timeout),
                    allow_redirects=False,
                )
        except (requests.RequestException, OSError, ValueError) as exc:
            scope.detach()
            scope.check()
            reason = describe(exc)
            raise Retryable(ConnectionLost(reason, task_id=scope.task_id, last_event_id=None), reason=reason) from None
        if not stream:
            scope.detach()
        if response.status_code >= 400:
            try:
                error = error_from_response(response, self.max_retry_delay, stream)
            except (requests.RequestException, OSError, ValueError) as exc:
                error = APIError(response.status_code, f"unreadable error body ({describe(exc)})")
            finally:
                response.close()
                scope.detach()
            if is_retryable_status(response.status_code):
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self.max_retry_delay)
                raise Retryable(error, retry_after)
            raise error
        return response

    def call(
        self,
        method: str,
        path: str,
        *,
        scope: _Abort,
        body: Any = None,
        headers: Optional[dict[str, str]] = None,
        retry: bool = True,
        retried_conflict: Optional[Callable[[], Any]] = None,
    ) -> Any:
        """A JSON call; returns the envelope's ``data``. Retries per PROTOCOL.md when ``retry``.

        ``retried_conflict`` answers instead when a retry meets 409: the attempt
        whose answer was lost had already done the work (a cancel, a tool result).
        """
        attempts = (self.max_retries + 1) if retry else 1
        try:
            for attempt in self.policy(scope, attempts=attempts):
                with attempt:
                    try:
                        response = self.send(method, path, scope=scope, body=body, headers=headers)
                    except ConflictError:
                        if retried_conflict is None or attempt.retry_state.attempt_number == 1:
                            raise
                        return retried_conflict()
                    return _envelope(response)
        except Retryable as exc:
            raise exc.error from None
        raise AssertionError("unreachable")  # pragma: no cover


def _envelope(response: requests.Response) -> Any:
    try:
        payload = response.json()
    except ValueError:
        raise ProtocolError(
            f"expected a JSON body from {response.request.method} {urlsplit(response.url).path}, "
            f"got {response.headers.get('Content-Type', 'no content type')}: {_excerpt(response.text)}"
        ) from None
    if not isinstance(payload, dict) or "data" not in payload:
        raise ProtocolError(f'expected a {{"data": ...}} envelope, got {_excerpt(repr(payload))}')
    return payload["data"]


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
