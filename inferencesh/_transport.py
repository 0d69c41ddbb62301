"""The only module that touches requests and urllib3.

It owns the pooled ``requests.Session`` (one per client) and the headers every
call carries (``Authorization: Bearer``, ``User-Agent``), and sends each call
under a retry policy (``_retry``), mapping answers to typed errors
(``_answers``). Connections made here register with the caller's abort scope
(``_watchdog``) while a request is under way, so a deadline or a cancel can
shut the socket down and wake a blocked read at once.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Callable, Optional
from urllib.parse import quote, urlsplit

import requests
import requests.auth
import tenacity
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ._answers import describe, envelope, error_from_response, is_retryable_status, parse_retry_after
from ._errors import (
    APIError,
    ConflictError,
    ConnectionLost,
    UsageError,
)
from ._retry import Retryable, retry_policy
from ._version import __version__
from ._watchdog import _Abort, current_scope

log = logging.getLogger("inferencesh.retry")

DEFAULT_BASE_URL = "https://api.inference.sh"
USER_AGENT = f"inferencesh-python/{__version__}"


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
    """URL-quote an opaque id for a path segment (PROTOCOL.md: the client URL-quotes it).

    Raises ``UsageError`` before anything is sent for what cannot be an id: not a
    string, empty, ``.`` or ``..``, or holding a slash, a backslash, whitespace or
    a control character (``a/b``, ``../../etc/passwd``, a pasted newline).
    """
    if not isinstance(value, str) or not value:
        raise UsageError(f"{what} must be a non-empty string, not {value!r}")
    if value in (".", "..") or any(ch in "/\\" or ch.isspace() or not ch.isprintable() for ch in value):
        raise UsageError(f"{what} {value[:80]!r} is not an id (no slashes, dots alone, spaces or control characters)")
    return quote(value, safe="")


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
        # Proxies and CA bundles from the environment apply, as requests users expect, but they are read
        # once here rather than on every request (requests' trust_env reads them per call: a third of a
        # small call's CPU, which thousands of streams' reconciles feel). An auth object keeps a
        # ~/.netrc entry from replacing the key either way.
        self.session.trust_env = False
        self.session.proxies.update(requests.utils.get_environ_proxies(base_url))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            self.session.verify = bundle
        self._retired: list[requests.adapters.BaseAdapter] = []
        adapter = _Adapter(pool_connections=4, pool_maxsize=pool_maxsize)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT
        if api_key:
            self.session.auth = _BearerAuth(api_key)
        self._warn_no_key = not api_key

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
        self,
        scope: _Abort,
        server_delay: Callable[[], Optional[float]] = lambda: None,
        attempts: Optional[int] = None,
        max_delay: Optional[float] = None,
    ) -> tenacity.Retrying:
        return retry_policy(
            attempts=(self.max_retries + 1) if attempts is None else attempts,
            scope=scope,
            backoff_initial=self.backoff_initial,
            backoff_max=self.backoff_max,
            max_retry_delay=self.max_retry_delay,
            server_delay=server_delay,
            max_delay=max_delay,
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
        if self._warn_no_key:
            self._warn_no_key = False
            log.warning("no API key: requests to %s go without Authorization (set INFERENCE_API_KEY)", self.base_url)
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

    def call_within(self, timeout: Optional[float], method: str, path: str, **options: Any) -> Any:
        """``call`` under an abort scope of its own: a deadline of ``timeout`` seconds (None: none).

        ``options`` are ``call``'s (``body``, ``headers``, ``retry``, ``retried_conflict``).
        """
        return self.answer_within(timeout, method, path, **options)[0]

    def answer_within(
        self,
        timeout: Optional[float],
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: Optional[dict[str, str]] = None,
        retry: bool = True,
        retried_conflict: Optional[Callable[[], Any]] = None,
    ) -> tuple[Any, Optional[str]]:
        """``call_answer`` under an abort scope of its own: a deadline of ``timeout`` seconds (None: none)."""
        scope = _Abort(timeout)
        try:
            return self.call_answer(
                method, path, scope=scope, body=body, headers=headers, retry=retry, retried_conflict=retried_conflict
            )
        finally:
            scope.close()

    def call(self, method: str, path: str, *, scope: _Abort, **options: Any) -> Any:
        """A JSON call; returns the envelope's payload (``_answers.envelope``); ``options`` as ``call_answer``'s."""
        return self.call_answer(method, path, scope=scope, **options)[0]

    def call_answer(
        self,
        method: str,
        path: str,
        *,
        scope: _Abort,
        body: Any = None,
        headers: Optional[dict[str, str]] = None,
        retry: bool = True,
        retried_conflict: Optional[Callable[[], Any]] = None,
    ) -> tuple[Any, Optional[str]]:
        """A JSON call → (the envelope's payload, the dialect the envelope shows: "hosted", "v1" or None).

        Retried per PROTOCOL.md when ``retry``; ``request_timeout`` bounds the whole call.
        ``retried_conflict`` answers instead when a retry meets 409: the attempt whose answer
        was lost had already done the work (a cancel, a tool result).
        """
        attempts = (self.max_retries + 1) if retry else 1
        # request_timeout bounds the whole call, its retries included (a server that accepts and never
        # answers costs request_timeout, not (max_retries + 1) × request_timeout).
        ends = time.monotonic() + self.request_timeout
        try:
            for attempt in self.policy(scope, attempts=attempts, max_delay=self.request_timeout):
                with attempt:
                    read = max(0.001, min(self.request_timeout, ends - time.monotonic()))
                    try:
                        response = self.send(method, path, scope=scope, body=body, headers=headers, read_timeout=read)
                    except ConflictError:
                        if retried_conflict is None or attempt.retry_state.attempt_number == 1:
                            raise
                        return retried_conflict(), None
                    return envelope(response)
        except Retryable as exc:
            scope.check()  # a timeout or cancel that stopped the retries is what the caller hears of
            raise exc.error from None
        raise AssertionError("unreachable")  # pragma: no cover
