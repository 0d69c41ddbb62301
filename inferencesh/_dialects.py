"""Dialects: how a stream's decoded frames become the items users see, and how it resumes.

A dialect is a value the stream (``_resume.Feed``) is given; the reconnect
loop, the watchdog and the iterator never ask which one they carry. A
``Reader`` is one stream's dialect state:

* ``uses_ids``: whether items carry the server's event ids, so the stream
  resumes with ``Last-Event-ID`` (PROTOCOL.md) — or not, and it resumes by
  re-reading the resource's history (``recover``, HOSTED.md);
* ``from_sse(events)`` / ``from_ndjson(batches)``: the decoded frames of one
  connection (``_sse`` events, or ``_ndjson`` objects in batches: the objects
  one read brought; chosen by the answer's ``Content-Type``) → new items, each
  once;
* ``recover()``: after a drop, the items the resource's own history holds
  that were not handed out yet (HOSTED.md; nothing for PROTOCOL.md);
* ``stale()``: True when only heartbeats have come for too long, so the
  stream re-reads the history although the connection looks alive.

``V1Reader`` is PROTOCOL.md; the hosted readers live in ``_hosted`` (tasks)
and ``_hosted_chat`` (agent chats); ``AutoReader`` picks one per stream by
the shape of the first frame (``dialect="auto"``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from itertools import chain
from typing import Any, Callable, Optional, Protocol, TypeVar

from ._errors import ProtocolError, UsageError
from ._sse import ServerSentEvent

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: The values of ``dialect=``.
DIALECTS = ("auto", "hosted", "v1")
#: ``stream_format=`` → the ``Accept`` header of stream requests.
ACCEPT = {
    "auto": "text/event-stream, application/x-ndjson;q=0.9",
    "sse": "text/event-stream",
    "ndjson": "application/x-ndjson",
}


def accept_for(stream_format: str, dialect: Optional[str]) -> str:
    """The ``Accept`` of a stream request: PROTOCOL.md streams are SSE only, so "auto" asks just for SSE there."""
    return ACCEPT["sse" if stream_format == "auto" and dialect == "v1" else stream_format]


def check_dialect(value: Any) -> str:
    """``value`` if it names a dialect; ``UsageError`` otherwise."""
    if value not in DIALECTS:
        raise UsageError(f"dialect must be one of {', '.join(map(repr, DIALECTS))}, not {value!r}")
    return str(value)


def check_stream_format(value: Any) -> str:
    """``value`` if it names a stream format; ``UsageError`` otherwise."""
    if value not in ACCEPT:
        raise UsageError(f"stream_format must be one of {', '.join(map(repr, ACCEPT))}, not {value!r}")
    return str(value)


class Reader(Protocol[T]):
    """One stream's dialect state (see the module docstring)."""

    @property
    def uses_ids(self) -> bool: ...

    def from_sse(self, events: Iterator[ServerSentEvent]) -> Iterator[T]: ...

    def from_ndjson(self, batches: Iterator[list[dict[str, Any]]]) -> Iterator[T]: ...

    def recover(self) -> list[T]: ...

    def stale(self) -> bool: ...


#: The SSE event types of hosted task streams (the task's objects unnamed, or named ``delta``).
HOSTED_TASK_EVENTS = frozenset({"message", "update", "task", "tasks", "delta"})
#: The SSE event types of hosted chat streams.
HOSTED_CHAT_EVENTS = frozenset({"message", "chats", "chat_messages", "agent_runs", "delta"})


def sse_objects(events: Iterator[ServerSentEvent], types: frozenset[str]) -> Iterator[list[dict[str, Any]]]:
    """Hosted SSE events as NDJSON batches of one object each; other event types are skipped unread
    (PROTOCOL.md: event types a client does not know are ignored)."""
    for event in events:
        if event.event in types:
            yield [sse_object(event)]


def sse_object(event: ServerSentEvent) -> dict[str, Any]:
    """A hosted SSE event as the NDJSON object it stands for (HOSTED.md "The task stream").

    An unnamed event's data is the object itself; a named one (``event:
    chats``) becomes ``{"event": name, "data": <data>}``. Raises
    ``ProtocolError`` when the data is not a JSON object.
    """
    try:
        data = json.loads(event.data)
    except (ValueError, RecursionError):
        raise ProtocolError("event data is not JSON (or nested too deeply)") from None
    if event.event in ("message", "update"):
        if not isinstance(data, dict):
            raise ProtocolError("event data is not a JSON object")
        return data
    return {"event": event.event, "data": data}


class V1Reader:
    """PROTOCOL.md: events with ``id:``, resumed with ``Last-Event-ID``, skipped when already delivered.

    ``parse(event, id)`` turns an event whose type is in ``event_types`` into
    an item (None skips it); ``last_event_id()`` is the last id delivered;
    ``heard()`` is told of every event a connection brings (a replayed one
    too).
    """

    uses_ids = True

    def __init__(
        self,
        parse: Callable[[ServerSentEvent, int], Optional[T]],
        event_types: frozenset[str],
        last_event_id: Callable[[], Optional[int]],
        heard: Callable[[], None],
    ) -> None:
        self.parse = parse
        self.event_types = event_types
        self.last_event_id = last_event_id
        self.heard = heard

    def from_sse(self, events: Iterator[ServerSentEvent]) -> Iterator[Any]:
        parse, types, heard = self.parse, self.event_types, self.heard
        last = self.last_event_id()
        for event in events:
            heard()
            if event.event not in types:
                continue  # PROTOCOL.md: event types the client does not know are ignored, id or not
            number = event_id(event)
            if last is not None and number <= last:
                continue
            item = parse(event, number)
            if item is not None:
                last = number
                yield item

    def from_ndjson(self, batches: Iterator[list[dict[str, Any]]]) -> Iterator[Any]:
        raise ProtocolError("the stream answered NDJSON, which PROTOCOL.md (dialect 'v1') does not use")

    def recover(self) -> list[Any]:
        return []

    def stale(self) -> bool:
        return False


def event_id(event: ServerSentEvent) -> int:
    """The event's id as an int; ``ProtocolError`` unless it is a non-negative decimal integer."""
    text = event.id
    if not text:
        raise ProtocolError(
            "the event has no id, which PROTOCOL.md requires (a hosted-dialect stream? "
            "use dialect='auto' or 'hosted')",
            event_id=text,
        )
    if not (text.isascii() and text.isdigit()):
        raise ProtocolError("event id is not a non-negative decimal integer", event_id=text)
    try:
        return int(text)
    except ValueError:  # over int()'s 4,300-digit limit
        raise ProtocolError("event id is too large", event_id=text[:40] + "...") from None


_HOSTED_EVENTS = frozenset({"message", "delta", "chats", "chat_messages", "agent_runs"})


class AutoReader:
    """``dialect="auto"``: the first frame of the stream decides, and the choice holds for the stream.

    NDJSON is the hosted service's; an SSE event with an ``id:`` or of type
    ``update`` is PROTOCOL.md's; an unnamed one without an id, or one of the
    hosted event types, is the hosted service's. Events of other types (which
    both dialects ignore) are held until one of those decides.
    """

    def __init__(self, v1: Reader[Any], hosted: Reader[Any]) -> None:
        self._v1 = v1
        self._hosted = hosted
        self.chosen: Optional[Reader[Any]] = None
        self._opened = time.monotonic()  # when the current undecided connection opened

    @property
    def uses_ids(self) -> bool:
        return self.chosen is None or self.chosen.uses_ids

    @property
    def undecided(self) -> bool:
        """True until the first frame chose the dialect."""
        return self.chosen is None

    def from_sse(self, events: Iterator[ServerSentEvent]) -> Iterator[Any]:
        # A generator: reading (and so any drop) happens when the stream asks for its first item.
        if self.chosen is None:
            self._opened = time.monotonic()
            held: list[ServerSentEvent] = []
            for event in events:
                held.append(event)
                if event.id or event.event == "update":
                    self.chosen = self._v1
                elif event.event in _HOSTED_EVENTS:
                    self.chosen = self._hosted
                else:
                    continue
                break
            if self.chosen is None:
                return  # the stream ended on events that every dialect ignores
            events = chain(held, events)
        yield from self.chosen.from_sse(events)

    def from_ndjson(self, batches: Iterator[list[dict[str, Any]]]) -> Iterator[Any]:
        if self.chosen is None:
            self.chosen = self._hosted
        yield from self.chosen.from_ndjson(batches)

    def recover(self) -> list[Any]:
        if self.chosen is not None:
            return self.chosen.recover()
        # Not decided yet (only comments came): the resource's own shape decides (None: PROTOCOL.md's).
        probe: Optional[Callable[[], Optional[list[Any]]]] = getattr(self._hosted, "probe", None)
        found = None if probe is None else probe()
        self.chosen = self._v1 if found is None else self._hosted
        return found or []

    def stale(self) -> bool:
        if self.chosen is not None:
            return self.chosen.stale()
        # Undecided after the reconcile interval (comments alone came): re-read, as the hosted reader would.
        interval = getattr(self._hosted, "reconcile_interval", None)
        return interval is not None and time.monotonic() - self._opened > interval


def pick(dialect: Optional[str], v1: Callable[[], Reader[T]], hosted: Callable[[], Reader[T]]) -> Reader[T]:
    """The reader for ``dialect`` ("v1", "hosted", or "auto"/None: decided by the first frame)."""
    if dialect == "v1":
        return v1()
    if dialect == "hosted":
        return hosted()
    return AutoReader(v1(), hosted())
