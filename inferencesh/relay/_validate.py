"""What the relay accepts from a browser, checked before anything goes upstream.

Pure functions, no I/O. Everything that could steer a request somewhere else
(``../``, a URL, a host name, CR/LF) is refused by shape: task ids and app
names are matched against strict patterns with ``fullmatch`` (so a trailing
newline cannot slip past a ``$``), and nothing the browser sends ever becomes
part of the upstream's host or scheme. Error messages never echo the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Optional

from .._errors import UsageError

#: Opaque task ids as the API makes them (``tsk_`` + hex): letters, digits, ``_``, ``-``.
_TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: ``org/name`` or ``org/name@version``. The org is a slug (no dot, so no host name fits);
#: the name and version may hold dots (``model-v1.5``, ``@1.2.0``) but never ``..``.
_APP = re.compile(
    r"(?P<base>[A-Za-z0-9][A-Za-z0-9_-]{0,63}/[A-Za-z0-9][A-Za-z0-9._-]{0,127})"
    r"(?:@[A-Za-z0-9][A-Za-z0-9._-]{0,63})?"
)
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")
_EVENT_ID = re.compile(r"[0-9]{1,18}")


class RelayRefusal(Exception):
    """A request the relay answers itself, with ``status`` and a problem ``detail``.

    ``headers`` are extra response headers (for example ``Allow`` on a 405).
    """

    def __init__(self, status: int, detail: str, headers: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


def check_task_id(value: Optional[str]) -> str:
    """Return ``value`` if it is a well-formed task id; ``RelayRefusal(400)`` otherwise."""
    if value is None:
        raise RelayRefusal(400, "the taskId query parameter is required")
    if not _TASK_ID.fullmatch(value):
        raise RelayRefusal(400, "taskId must be 1 to 128 letters, digits, '_' or '-'")
    return value


def check_app(value: Any) -> str:
    """Return ``value`` if it is an app name such as ``infsh/flux-schnell`` or ``org/name@1.2``.

    Raises ``RelayRefusal(400)`` for anything else: a URL, a host, a path with
    ``..``, control characters, a non-string.
    """
    if not isinstance(value, str):
        raise RelayRefusal(400, "'app' must be a string such as 'infsh/flux-schnell'")
    if not _APP.fullmatch(value) or ".." in value:
        raise RelayRefusal(400, "'app' must look like 'org/name' or 'org/name@version'")
    return value


def check_idempotency_key(value: Optional[str]) -> Optional[str]:
    """A browser's own ``Idempotency-Key`` (1–128 of ``[A-Za-z0-9_-]``), None if absent; else 400."""
    if value is None or value == "":
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise RelayRefusal(400, "Idempotency-Key must be 1 to 128 letters, digits, '_' or '-'")
    return value


def parse_last_event_id(value: Optional[str]) -> Optional[int]:
    """The browser's ``Last-Event-ID`` as an int (None when absent or empty); 400 if not decimal digits."""
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if not _EVENT_ID.fullmatch(value):
        raise RelayRefusal(400, "Last-Event-ID must be a non-negative decimal integer")
    return int(value)


def run_body(payload: Any) -> dict[str, Any]:
    """The upstream ``POST /apps/run`` body built from a browser's ``{"app", "input", "setup"?}``.

    Only those three keys are forwarded (others are dropped); ``input``
    defaults to ``{}``. Raises ``RelayRefusal(400)`` for any other shape.
    """
    if not isinstance(payload, dict):
        raise RelayRefusal(400, 'the body must be a JSON object {"app": ..., "input": {...}}')
    body: dict[str, Any] = {"app": check_app(payload.get("app"))}
    task_input = payload.get("input", {})
    if task_input is None:
        task_input = {}
    if not isinstance(task_input, dict):
        raise RelayRefusal(400, "'input' must be a JSON object")
    body["input"] = task_input
    setup = payload.get("setup")
    if setup is not None:
        if not isinstance(setup, dict):
            raise RelayRefusal(400, "'setup' must be a JSON object")
        body["setup"] = setup
    return body


class AppAllowList:
    """Which apps a relay may start; None (the default) allows every well-formed name.

    An entry ``org/name`` allows every version of that app; ``org/name@v``
    allows only that version. ``UsageError`` for an entry that is not an app name.
    """

    def __init__(self, apps: Optional[Iterable[str]]) -> None:
        self._apps: Optional[frozenset[str]] = None
        if apps is not None:
            if isinstance(apps, str):
                raise UsageError("allowed_apps must be a collection of app names, not one string")
            entries = []
            for app in apps:
                try:
                    entries.append(check_app(app))
                except RelayRefusal:
                    raise UsageError(f"allowed_apps holds {app!r}, which is not an app name") from None
            self._apps = frozenset(entries)

    def allows(self, app: str) -> bool:
        """True when ``app`` (already checked by ``check_app``) may be started."""
        if self._apps is None:
            return True
        return app in self._apps or app.split("@", 1)[0] in self._apps

    def __repr__(self) -> str:
        return "AppAllowList(any)" if self._apps is None else f"AppAllowList({sorted(self._apps)!r})"
