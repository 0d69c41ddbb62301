"""Requests to hosts other than the base URL: upload URLs and file URLs. Never with the key.

The client's session carries ``Authorization: Bearer <key>`` through its
auth object; every request made here replaces that object with ``_NoAuth``,
which also keeps a ``~/.netrc`` entry out, and follows no redirect on its
own (a download follows them here, hop by hop, each without a key). The
key is never put in a URL or any other header, so no host but the base URL
ever sees it. Failures map as in ``_transport``: network errors and 408,
429 and 5xx answers are ``Retryable`` (``Retry-After`` honoured), other
error answers raise the caller's typed error at once.
"""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
import requests.auth

from ._answers import describe, is_retryable_status, parse_retry_after
from ._errors import FileTransferError, UsageError
from ._retry import Retryable
from ._transport import Transport
from ._watchdog import _Abort

MAX_REDIRECTS = 5


class _NoAuth(requests.auth.AuthBase):
    """No ``Authorization`` at all: neither the client's key nor a ``.netrc`` entry."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


NO_AUTH = _NoAuth()


def is_http_url(value: Any) -> bool:
    """True for a string that is an absolute ``http://`` or ``https://`` URL with a host."""
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check_http_url(url: Any, what: str = "url") -> str:
    """``url`` if it is an http(s) URL; ``UsageError`` otherwise (``data:``, ``file:``, paths...)."""
    if not is_http_url(url):
        shown = url[:60] + "..." if isinstance(url, str) and len(url) > 60 else url
        raise UsageError(f"{what} must be an http:// or https:// URL, not {shown!r}")
    return str(url)


def shown_url(url: str) -> str:
    """``url`` without userinfo, query and fragment: fit for messages (a pre-signed query is a credential)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def send(
    transport: Transport,
    method: str,
    url: str,
    *,
    scope: _Abort,
    error: type[FileTransferError],
    data: Any = None,
    headers: Optional[dict[str, str]] = None,
    stream: bool = False,
    allow: tuple[int, ...] = (),
) -> requests.Response:
    """One exchange with ``url`` on the client's pool, without the key.

    Redirects are not followed (a 3xx is returned as is). Statuses in
    ``allow`` are returned too. Raises ``Retryable`` (wrapping ``error``)
    for network failures and 408/429/5xx, ``error`` for other error answers,
    the scope's ``StreamTimeout``/``Cancelled`` once it fired.
    """
    scope.check()
    shown = shown_url(url)
    remaining = scope.remaining()
    connect = transport.connect_timeout if remaining is None else max(0.001, min(transport.connect_timeout, remaining))
    try:
        with scope.bound():
            response = transport.session.request(
                method,
                url,
                data=data,
                headers=headers,
                auth=NO_AUTH,
                stream=stream,
                timeout=(connect, transport.request_timeout),
                allow_redirects=False,
                proxies=_proxies_for(url),
            )
    except (requests.RequestException, OSError, ValueError) as exc:
        scope.detach()
        scope.check()
        reason = describe(exc)
        raise Retryable(error(f"{method} {shown} failed: {reason}", url=shown), reason=reason) from None
    if not stream:
        scope.detach()
    status = response.status_code
    if status >= 400 and status not in allow:
        response.close()
        scope.detach()
        message = f"{method} {shown} answered {status} {response.reason or ''}".rstrip()
        failure = error(message, url=shown, status_code=status)
        if is_retryable_status(status):
            raise Retryable(failure, parse_retry_after(response.headers.get("Retry-After"), transport.max_retry_delay))
        raise failure
    return response


def get_following(
    transport: Transport,
    url: str,
    *,
    scope: _Abort,
    error: type[FileTransferError],
    headers: Optional[dict[str, str]] = None,
    allow: tuple[int, ...] = (),
) -> requests.Response:
    """A streamed ``GET`` of ``url`` following up to 5 redirects to http(s) URLs, each hop without the key."""
    for _ in range(MAX_REDIRECTS + 1):
        response = send(transport, "GET", url, scope=scope, error=error, headers=headers, stream=True, allow=allow)
        location = response.headers.get("Location")
        if response.status_code not in (301, 302, 303, 307, 308) or not location:
            return response
        response.close()
        scope.detach()
        url = urljoin(url, location)
        if not is_http_url(url):
            raise error(f"redirected to a URL that is not http(s): {shown_url(url)}", url=shown_url(url))
    raise error(f"more than {MAX_REDIRECTS} redirects", url=shown_url(url))


def _proxies_for(url: str) -> dict[str, Any]:
    """This host's proxies from the environment, not the API's (None drops the session's: see Transport)."""
    return {"http": None, "https": None, **requests.utils.get_environ_proxies(url)}
