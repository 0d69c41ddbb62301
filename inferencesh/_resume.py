"""One resumable event stream: reconnect with ``Last-Event-ID``, dedupe, close.

The path of one event is short and one-way: socket bytes → ``raw.read1`` →
``SSEDecoder`` (sseclient-py, made exact) → the stream's ``parse`` (a
``TaskUpdate``, or an agent ``Message`` / ``ToolCall`` / ``Done``) → the
caller. Reconnecting sits beside that path: after a drop (a reset, a torn
chunk, an idle read timeout, or a clean end before a terminal event) the feed
waits max(the server's ``retry:``, exponential backoff with jitter) and
reopens with ``Last-Event-ID`` set to the last event it delivered; events with
ids it already delivered are skipped, so the caller never sees an id twice
and never misses one the server sent (PROTOCOL.md, "Task event stream").
The tenacity policy wraps only that reconnect step.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from typing import Callable, Generic, Optional, TypeVar

import requests
import urllib3.exceptions

from ._answers import describe
from ._errors import ConnectionLost, ProtocolError
from ._retry import Retryable
from ._sse import ServerSentEvent, SSEDecoder
from ._transport import Transport
from ._watchdog import CANCEL, CLOSE, TIMEOUT, _Abort

log = logging.getLogger("inferencesh.stream")

T = TypeVar("T")

_READ_SIZE = 64 * 1024
_READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError)


class _Drop(Exception):
    """Internal: the connection ended before a terminal event; reconnect."""


def event_id(event: ServerSentEvent) -> int:
    """The event's id as an int; ``ProtocolError`` unless it is a non-negative decimal integer."""
    text = event.id
    if not (text.isascii() and text.isdigit()):
        raise ProtocolError("event id is not a non-negative decimal integer", event_id=text)
    try:
        return int(text)
    except ValueError:  # over int()'s 4,300-digit limit
        raise ProtocolError("event id is too large", event_id=text[:40] + "...") from None


class Feed(Generic[T]):
    """The state of one resumable stream; holds no reference to the object the user iterates.

    Events whose type is not in ``event_types`` are skipped before anything
    else; ``parse(event, id)`` turns the others into items (None skips one); ``is_terminal(item)`` says when to stop;
    ``finished()`` is asked when a resumed stream closes with nothing new
    (PROTOCOL.md: the task may be over) and returns True to end quietly.
    """

    def __init__(
        self,
        transport: Transport,
        path: str,
        scope: _Abort,
        *,
        parse: Callable[[ServerSentEvent, int], Optional[T]],
        event_types: frozenset[str],
        is_terminal: Callable[[T], bool],
        finished: Callable[[], bool] = lambda: False,
        last_event_id: Optional[int],
        max_reconnects: int,
        idle_timeout: float,
        max_event_bytes: int,
    ) -> None:
        self.transport = transport
        self.path = path
        self.scope = scope
        self.parse = parse
        self.event_types = event_types
        self.is_terminal = is_terminal
        self.finished = finished
        self.last_event_id = last_event_id
        self.max_reconnects = max_reconnects
        self.idle_timeout = idle_timeout
        self.max_event_bytes = max_event_bytes
        self.retry_ms: Optional[int] = None
        self.decoder: Optional[SSEDecoder] = None
        self.response: Optional[requests.Response] = None
        self.done = False
        self.resumed_from = last_event_id  # the id this stream started after (None: from the start)
        self.heard = False  # whether the current connection brought any event (a replayed one too)

    # -- one connection -------------------------------------------------

    def open(self) -> Iterator[T]:
        """Open the stream from the last delivered id; the iterator yields only new items."""
        # identity: a compressed event stream would hold events back until a block fills.
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store", "Accept-Encoding": "identity"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        response = self.transport.send(
            "GET", self.path, scope=self.scope, headers=headers, stream=True, read_timeout=self.idle_timeout
        )
        self.response = response
        content_type = response.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() != "text/event-stream":
            self.release()
            raise ProtocolError(f"stream answered 200 with Content-Type {content_type or 'none'!r}")
        decoder = self.decoder = SSEDecoder(self.max_event_bytes)
        if self.last_event_id is not None:
            decoder.last_event_id = str(self.last_event_id)
        return self._items(decoder.iter_events(self._chunks(response)))

    def _chunks(self, response: requests.Response) -> Iterator[bytes]:
        raw = response.raw
        # Decoding costs a little per read; only a server that compressed anyway needs it.
        decode = bool(response.headers.get("Content-Encoding", "identity").strip().lower() != "identity")
        while True:
            try:
                chunk = raw.read1(_READ_SIZE, decode_content=decode)
            except _READ_ERRORS as exc:
                self.scope.check()
                if self.scope.reason == CLOSE:
                    return
                raise _Drop(describe(exc)) from None
            if not chunk:
                self.scope.check()
                return
            yield chunk

    def _items(self, events: Iterator[ServerSentEvent]) -> Iterator[T]:
        self.heard = False
        for event in events:
            self.heard = True
            if event.event not in self.event_types:
                continue  # PROTOCOL.md: event types the client does not know are ignored, id or not
            number = event_id(event)
            if self.last_event_id is not None and number <= self.last_event_id:
                continue
            item = self.parse(event, number)
            if item is not None:
                yield item

    def release(self) -> None:
        """Close the current response (its connection is not reused) and detach it from the scope."""
        response, self.response = self.response, None
        if response is not None:
            response.close()
        self.scope.detach()

    # -- reconnecting ---------------------------------------------------

    def connect(self, drop: Optional[_Drop]) -> Optional[tuple[Iterator[T], T]]:
        """The reconnect step: (re)open until a new item arrives.

        ``drop`` is the failure that led here; it counts as the failed first
        attempt, so tenacity waits before the next one. Returns None when a
        resumed stream closed empty on a finished task, or after ``close()``. Raises
        ``ConnectionLost`` after ``max_reconnects`` attempts in a row without
        a new event.
        """
        pending: Optional[Exception] = drop
        try:
            for attempt in self.transport.policy(
                self.scope, server_delay=self._server_delay, attempts=self.max_reconnects + 1
            ):
                with attempt:
                    if pending is not None:
                        failed, pending = pending, None
                        raise Retryable(failed)
                    if attempt.retry_state.attempt_number > 1:
                        log.info("reconnecting to %s with Last-Event-ID %s", self.path, self.last_event_id)
                    return self._open_until_item()
        except Retryable as exc:
            self.scope.check()
            if self.scope.reason == CLOSE:
                return None  # closed from another thread while (re)connecting: end quietly, no retry
            error = exc.error
            reason = error.reason if isinstance(error, ConnectionLost) else str(error)
            raise ConnectionLost(reason, task_id=self.scope.task_id, last_event_id=self.last_event_id) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _open_until_item(self) -> Optional[tuple[Iterator[T], T]]:
        if self.scope.reason == CLOSE:
            return None  # close() from another thread during a backoff wait: no new request
        items = self.open()
        try:
            first = next(items, None)
        except _Drop as exc:
            self.release()
            raise Retryable(exc) from None
        except BaseException:
            self.release()
            raise
        if first is not None:
            return items, first
        self.release()
        if self.scope.reason == CLOSE:
            return None  # close() from another thread before the first item: end quietly
        # PROTOCOL.md: a resumed stream that closes having sent nothing may mean its id was the
        # terminal event. Not so when events came (a replay, then a drop), nor once this stream
        # has delivered a non-terminal item itself: the terminal one is still owed, so reconnect.
        if (
            self.last_event_id is not None
            and self.last_event_id == self.resumed_from
            and not self.heard
            and self.finished()
        ):
            return None
        raise Retryable(_Drop("stream closed before a terminal event"))

    def _server_delay(self) -> Optional[float]:
        # WHATWG: the reconnection time a server set stays in force across connections.
        if self.decoder is not None and self.decoder.retry is not None:
            self.retry_ms = self.decoder.retry
        return None if self.retry_ms is None else self.retry_ms / 1000.0


def follow(feed: Feed[T], on_abort: Optional[Callable[[], None]] = None) -> Generator[T, None, None]:
    """Yield the feed's new items, reconnecting after drops, until a terminal one.

    ``on_abort`` runs when the stream ends by timeout, cancel or Ctrl-C
    before its terminal item (``cancel_task_on_abort``).
    """
    interrupted = False
    try:
        drop: Optional[_Drop] = None
        while True:
            opened = feed.connect(drop)
            if opened is None:
                feed.done = feed.scope.reason != CLOSE
                return
            items, item = opened
            try:
                while True:
                    if feed.scope.reason is not None:
                        # Aborted while this item sat decoded in the buffer: it is not handed out.
                        feed.scope.check()
                        return
                    feed.last_event_id = _number_of(item, feed.last_event_id)
                    terminal = feed.is_terminal(item)
                    feed.done = terminal
                    yield item
                    if terminal:
                        return
                    try:
                        item = next(items)
                    except StopIteration:
                        feed.scope.check()
                        if feed.scope.reason == CLOSE:
                            return
                        raise _Drop("stream ended before a terminal event") from None
            except _Drop as exc:
                log.info("%s dropped after event %s: %s", feed.path, feed.last_event_id, exc)
                drop = exc
            finally:
                feed.release()
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        reason = feed.scope.reason
        feed.scope.close()
        if on_abort is not None and not feed.done and (interrupted or reason in (TIMEOUT, CANCEL)):
            on_abort()


def _number_of(item: object, previous: Optional[int]) -> Optional[int]:
    number = getattr(item, "event_id", None)
    return number if isinstance(number, int) else previous
