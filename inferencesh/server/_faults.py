"""Fault specs: parsing, per-task firing counters, and the raw-socket faults.

A spec is a dict ``{"kind": ..., "times"?: n, ...}`` (see the package
docstring for every kind). Specs come from the ``"_faults"`` list of a run's
input and from ``LocalServer(faults=...)``; each task gets its own armed copy
of all of them, so ``times`` counts firings per task.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

#: Faults that act on one stream connection after ``after`` events sent on it.
CONNECTION_KINDS = frozenset({"close", "reset", "cut", "torn", "stall", "malformed", "mute"})
#: Of those, the ones that act on the bytes of the next event, so wait for it.
NEXT_EVENT_KINDS = frozenset({"cut", "torn"})
KINDS = CONNECTION_KINDS | {"status", "overlap", "run_status", "run_drop"}

_STATUS_CODES = {"status": (429, 500, 502, 503), "run_status": (429, 503)}
_ALLOWED_KEYS = {
    "close": {"after"},
    "reset": {"after"},
    "cut": {"after"},
    "torn": {"after"},
    "stall": {"after", "seconds"},
    "malformed": {"after"},
    "mute": {"after"},
    "status": {"code", "retry_after"},
    "overlap": {"back"},
    "run_status": {"code", "retry_after"},
    "run_drop": set(),
}


@dataclass(frozen=True)
class FaultSpec:
    """One validated fault spec.

    ``times`` is how many times it fires per task (-1: always); ``after`` is
    an event count on one connection; ``seconds`` the stall length (real
    seconds, not divided by ``speed``); ``code``/``retry_after`` the HTTP
    status and optional ``Retry-After`` seconds; ``back`` the overlap depth.
    """

    kind: str
    times: int = 1
    after: int = 0
    seconds: float = 0.0
    code: int = 503
    retry_after: Optional[float] = None
    back: int = 1


def _int(spec: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"fault {spec.get('kind')!r}: {key!r} must be an integer >= {minimum}")
    return value


def _number(spec: Mapping[str, Any], key: str, default: float | None) -> float | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"fault {spec.get('kind')!r}: {key!r} must be a number >= 0")
    return float(value) if isinstance(value, float) else value


def parse_fault(spec: object) -> FaultSpec:
    """Validate one spec dict; raises ``ValueError`` saying what is wrong."""
    if not isinstance(spec, Mapping):
        raise ValueError("a fault spec must be an object")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    unknown = set(spec) - {"kind", "times"} - _ALLOWED_KEYS[kind]
    if unknown:
        raise ValueError(f"fault {kind!r}: unknown field(s) {', '.join(sorted(unknown))}")
    times = _int(spec, "times", 1, -1)
    code = _int(spec, "code", 503, 100)
    if kind in _STATUS_CODES and code not in _STATUS_CODES[kind]:
        allowed = ", ".join(str(c) for c in _STATUS_CODES[kind])
        raise ValueError(f"fault {kind!r}: 'code' must be one of {allowed}")
    if kind == "stall" and "seconds" not in spec:
        raise ValueError("fault 'stall': 'seconds' is required")
    return FaultSpec(
        kind=kind,
        times=times,
        after=_int(spec, "after", 0, 0),
        seconds=_number(spec, "seconds", 0.0) or 0.0,
        code=code,
        retry_after=_number(spec, "retry_after", None),
        back=_int(spec, "back", 1, 0),
    )


def parse_faults(specs: object) -> list[FaultSpec]:
    """Validate a list of spec dicts; raises ``ValueError`` on the first bad one."""
    if specs is None:
        return []
    if not isinstance(specs, (list, tuple)):
        raise ValueError("'_faults' must be a list of fault specs")
    return [parse_fault(spec) for spec in specs]


class ArmedFault:
    """A spec with its remaining number of firings (per task)."""

    __slots__ = ("remaining", "spec")

    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self.remaining = spec.times

    def take(self) -> bool:
        """Use up one firing; False when none is left."""
        if self.remaining == 0:
            return False
        if self.remaining > 0:
            self.remaining -= 1
        return True


class TaskFaults:
    """The armed faults of one task and the questions the server asks them."""

    __slots__ = ("_armed",)

    def __init__(self, specs: Iterable[FaultSpec]) -> None:
        self._armed = [ArmedFault(spec) for spec in specs]

    def __bool__(self) -> bool:
        return bool(self._armed)

    def fire(self, kind: str) -> FaultSpec | None:
        """The first spec of ``kind`` with a firing left (used up), else None."""
        for armed in self._armed:
            if armed.spec.kind == kind and armed.take():
                return armed.spec
        return None

    def on_connection(self, sent: int, next_ready: bool) -> FaultSpec | None:
        """The connection fault due now that ``sent`` events went out on it.

        Called once with ``next_ready=False`` after each event sent (and at the
        start with 0), and once with ``next_ready=True`` just before the next
        event is written. Fires (and uses up) at most one spec.
        """
        for armed in self._armed:
            spec = armed.spec
            if spec.kind not in CONNECTION_KINDS or spec.after != sent:
                continue
            if (spec.kind in NEXT_EVENT_KINDS) != next_ready:
                continue
            if armed.take():
                return spec
        return None


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """``{"Retry-After": "<seconds>"}``, or ``{}`` when ``seconds`` is None."""
    if seconds is None:
        return {}
    text = str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))
    return {"Retry-After": text}


async def reset(transport: asyncio.BaseTransport) -> None:
    """Abort the connection with a TCP RST once queued bytes are written."""
    await _drain(transport)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    assert isinstance(transport, asyncio.WriteTransport)
    transport.abort()


async def tear(transport: asyncio.BaseTransport, event: bytes) -> None:
    """Break HTTP/1.1 chunked framing, then close the connection (FIN).

    Writes a chunk header announcing ``len(event)`` bytes followed by only the
    first half of ``event``, so the peer sees an incomplete chunk.
    """
    assert isinstance(transport, asyncio.WriteTransport)
    half = event[: max(1, len(event) // 2)]
    transport.write(b"%x\r\n" % len(event) + half)
    await _drain(transport)
    transport.close()


async def _drain(transport: asyncio.BaseTransport, limit: float = 1.0) -> None:
    """Give the kernel the bytes still queued in ``transport`` (bounded wait)."""
    if not isinstance(transport, asyncio.WriteTransport):
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while transport.get_write_buffer_size() and not transport.is_closing():
        if loop.time() > deadline:
            break
        await asyncio.sleep(0.005)
    # a moment for the peer to read what was sent before the RST/FIN arrives
    await asyncio.sleep(0.02)
