"""Which URLs the JavaScript SDK's proxied calls may reach: ``TargetPolicy``.

The relay's one upstream (same scheme, host and port; the path under its base)
and the origins an application allowed explicitly, nothing else. A target is
refused (``RelayRefusal(412)``) for userinfo, another port or scheme, ``.`` or
``..`` segments, encoded slashes, dots or percent signs in the path, a fragment,
whitespace, CR/LF or any non-ASCII character (so no IDN look-alike), a
backslash; what is called is rebuilt from the allowed origin, never copied from
the browser's string. Pure functions, no I/O; messages never echo the target.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import urlsplit

from .._errors import UsageError
from ._validate import RelayRefusal

_MAX_TARGET = 4096
_BAD_IN_PATH = ("%2f", "%5c", "%2e", "%25", "%00")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    """Scheme, lowercase host and port (the scheme's default when none is written)."""

    scheme: str
    host: str
    port: int

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if _DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"


def origin_of(url: str) -> Origin:
    """The ``Origin`` of an absolute http(s) URL; ``ValueError`` for anything else (userinfo included)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        raise ValueError("not an http(s) URL without userinfo")
    port = parts.port  # ValueError for a port that is not a number in range
    if port is None and parts.netloc.endswith(":"):
        raise ValueError("an empty port")
    return Origin(scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme])


def _allowed_origin(entry: str) -> Origin:
    """An ``allowed_hosts`` entry: ``https://host[:port]``, or ``host[:port]`` meaning https."""
    if not isinstance(entry, str) or not entry or not entry.isascii():
        raise UsageError(f"allowed_hosts holds {entry!r}, which is not an ASCII host or origin")
    url = entry if "://" in entry else "https://" + entry
    try:
        origin = origin_of(url)
    except ValueError:
        raise UsageError(f"allowed_hosts holds {entry!r}, which is not a host or an http(s) origin") from None
    if urlsplit(url).path not in ("", "/"):
        raise UsageError(f"allowed_hosts holds {entry!r}; give an origin without a path")
    return origin


class TargetPolicy:
    """Which targets may be called: the upstream (path under its base) and ``allowed_hosts`` (any path).

    ``check(raw)`` returns the URL to call, rebuilt from the allowed origin, or
    raises ``RelayRefusal(412)``. Error messages never echo the target.
    """

    def __init__(self, upstream: str, allowed_hosts: Iterable[str] = ()) -> None:
        if isinstance(allowed_hosts, str):
            raise UsageError("allowed_hosts must be a collection of hosts, not one string")
        self.upstream = origin_of(upstream)
        self.base_path = urlsplit(upstream).path.rstrip("/")
        self.extra = frozenset(_allowed_origin(entry) for entry in allowed_hosts)

    def check(self, raw: str) -> str:
        """The URL to call for the browser's target ``raw``; ``RelayRefusal(412)`` for any other."""
        if len(raw) > _MAX_TARGET or not all("!" <= ch <= "~" for ch in raw) or "\\" in raw:
            # whitespace, CR/LF, other control characters, non-ASCII (IDN look-alikes), backslashes
            raise refuse("the target URL holds characters a target never has")
        try:
            origin = origin_of(raw)
        except ValueError:
            raise refuse("the target must be an http(s) URL without userinfo") from None
        parts = urlsplit(raw)
        if parts.fragment or "#" in raw:
            raise refuse("the target must not hold a fragment")
        path = parts.path or "/"
        lowered = path.lower()
        if not path.startswith("/") or any(bad in lowered for bad in _BAD_IN_PATH):
            raise refuse("the target path holds encoded slashes, dots or percent signs")
        if any(segment in (".", "..") for segment in path.split("/")) or "//" in path:
            raise refuse("the target path holds '.', '..' or an empty segment")
        if origin == self.upstream:
            if not (path == self.base_path or path.startswith(self.base_path + "/")):
                raise refuse("the target is not under this relay's upstream base URL")
        elif origin not in self.extra:
            raise refuse("the target is not this relay's upstream or a host it was allowed to call")
        return f"{origin.scheme}://{origin.netloc}{path}" + (f"?{parts.query}" if parts.query else "")


def refuse(detail: str) -> RelayRefusal:
    return RelayRefusal(412, detail)
