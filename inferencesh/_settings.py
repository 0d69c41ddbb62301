"""``Settings``: a client's configuration, checked when it is made; and the check of an API key."""

from __future__ import annotations

from typing import Any

import attrs

from ._dialects import check_dialect, check_stream_format
from ._errors import UsageError, register_secret
from ._sse import DEFAULT_MAX_EVENT_BYTES
from ._transport import DEFAULT_BASE_URL, normalise_base_url

__all__ = ["Settings", "check_key"]


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise UsageError(f"{attribute.name} must be a positive number, not {value!r}")


def _count(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"{attribute.name} must be a whole number >= 0, not {value!r}")


@attrs.frozen
class Settings:
    """A client's configuration (everything but the API key). Times are seconds.

    ``heartbeat_interval``: the server's heartbeat period (PROTOCOL.md: 15 s);
    a read is idle, and so a drop, after ``idle_factor`` × that with no byte.
    ``max_retries``: retries of one call on 408/429/5xx/network errors.
    ``max_reconnects``: stream reconnects in a row that deliver no new event
    before ``ConnectionLost``. Waits are max(server delay, exponential backoff
    from ``backoff_initial`` up to ``backoff_max``, with jitter), never above
    ``max_retry_delay``. ``max_event_bytes``: the cap on one event (bytes).
    ``pool_maxsize``: connections kept per host (raise it for many parallel streams).
    ``dialect``: "auto" (each answer read by its shape), "hosted" (HOSTED.md)
    or "v1" (PROTOCOL.md). ``stream_format``: the ``Accept`` of stream
    requests, "auto" (SSE first, NDJSON too), "sse" or "ndjson"; the decoder
    follows the answer's ``Content-Type`` whatever was asked.
    ``reconcile_interval``: seconds of heartbeats alone after which a stream
    without ids re-reads the task's history (HOSTED.md).
    """

    base_url: str = attrs.field(default=DEFAULT_BASE_URL, converter=normalise_base_url)
    connect_timeout: float = attrs.field(default=10.0, validator=_positive)
    request_timeout: float = attrs.field(default=60.0, validator=_positive)
    heartbeat_interval: float = attrs.field(default=15.0, validator=_positive)
    idle_factor: float = attrs.field(default=2.0, validator=_positive)
    max_retries: int = attrs.field(default=5, validator=_count)
    max_reconnects: int = attrs.field(default=5, validator=_count)
    backoff_initial: float = attrs.field(default=0.25, validator=_positive)
    backoff_max: float = attrs.field(default=8.0, validator=_positive)
    max_retry_delay: float = attrs.field(default=60.0, validator=_positive)
    max_event_bytes: int = attrs.field(default=DEFAULT_MAX_EVENT_BYTES, validator=_positive)
    pool_maxsize: int = attrs.field(default=64, validator=_positive)
    dialect: str = attrs.field(default="auto", converter=check_dialect)
    stream_format: str = attrs.field(default="auto", converter=check_stream_format)
    reconcile_interval: float = attrs.field(default=30.0, validator=_positive)

    @property
    def idle_timeout(self) -> float:
        """Seconds without a byte after which a stream read counts as a drop."""
        return self.heartbeat_interval * self.idle_factor


def check_key(api_key: Any) -> None:
    """``UsageError`` for a key that cannot be sent as one header token (the message never shows it)."""
    if api_key is None:
        return
    if not isinstance(api_key, str) or not api_key:
        raise UsageError("api_key must be a non-empty string")
    if any(ch.isspace() or not ch.isprintable() for ch in api_key) or not api_key.isascii():
        raise UsageError("api_key must be printable ASCII without spaces (check for a stray newline)")
    register_secret(api_key)
