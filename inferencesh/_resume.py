"""One resumable stream, whatever its dialect: open, decode, reconnect, close.

The path of one item is short and one-way: socket bytes → ``raw.read1`` →
the decoder the answer's ``Content-Type`` names (``SSEDecoder``, sseclient-py
made exact, or ``NDJSONDecoder``) → the stream's ``Reader`` (its dialect,
``_dialects``: a ``TaskUpdate``, or an agent ``Message`` / ``ToolCall`` /
``Done``) → the caller. Reconnecting sits beside that path: after a drop (a
reset, a torn chunk, an idle read timeout, or a clean end before a terminal
item) the feed waits max(the server's ``retry:``, exponential backoff with
jitter) and reopens. A reader that uses ids (PROTOCOL.md) reopens with
``Last-Event-ID`` and skips ids it already delivered; one that does not
(HOSTED.md) first re-reads the resource's history (``recover``) and hands
out what it holds that was not handed out. Either way the caller never sees
an update twice and never misses one. The tenacity policy wraps only that
reconnect step.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from itertools import chain
from typing import Any, Callable, Generic, Optional, TypeVar

import requests
import urllib3.exceptions

from ._answers import describe
from ._dechunk import ChunkError, Dechunker
from ._dialects import Reader
from ._errors import APIError, ConnectionLost, ProtocolError
from ._ndjson import NDJSONDecoder
from ._retry import Retryable
from ._sse import SSEDecoder
from ._transport import Transport
from ._watchdog import CANCEL, CLOSE, TIMEOUT, _Abort

log = logging.getLogger("inferencesh.stream")

T = TypeVar("T")

_READ_SIZE = 64 * 1024
_READ_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError)


class _Drop(Exception):
    """Internal: the connection ended before a terminal item; reconnect.

    ``reconcile``: not a failure but a stream that brought only heartbeats for
    too long (HOSTED.md); the history is re-read at once, with no backoff.
    """

    def __init__(self, reason: str, *, reconcile: bool = False) -> None:
        super().__init__(reason)
        self.reconcile = reconcile


def _body_reader(response: requests.Response) -> tuple[Callable[[int], bytes], Optional[Dechunker], Optional[int]]:
    """How to read a streamed body: (read(n), the de-chunker or None, the bytes left by Content-Length or None).

    An uncompressed body is read straight from the socket's buffer (http.client's ``fp``) and
    de-chunked here in bulk: urllib3 costs several microseconds per HTTP chunk, and servers such
    as uvicorn send one chunk per event. The connection is never reused after a stream (``release``
    closes it), so reading past http.client's bookkeeping is safe. A compressed body, or a response
    without that buffer, goes through urllib3 as usual.
    """
    raw = response.raw
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        return (lambda n: raw.read1(n, decode_content=True)), None, None
    inner = getattr(raw, "_fp", None)
    fp = getattr(inner, "fp", None)
    if fp is None or not hasattr(fp, "read1") or getattr(inner, "chunk_left", None) is not None:
        return (lambda n: raw.read1(n, decode_content=False)), None, None
    if getattr(inner, "chunked", False):
        return fp.read1, Dechunker(), None
    length = getattr(inner, "length", None)
    return fp.read1, None, length if isinstance(length, int) else None


def _batches(decoder: NDJSONDecoder, chunks: Iterator[bytes]) -> Iterator[list[dict[str, Any]]]:
    """The objects of each read, as one list (possibly empty); the objects before a bad line come first."""
    for chunk in chunks:
        batch: list[dict[str, Any]] = []
        try:
            batch.extend(decoder.iter_objects((chunk,)))
        except ProtocolError:
            if batch:
                yield batch
            raise
        yield batch


def _media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


class Feed(Generic[T]):
    """The state of one resumable stream; holds no reference to the object the user iterates.

    ``reader`` is the stream's dialect (``_dialects.Reader``); ``accept`` the
    ``Accept`` header of its requests; ``is_terminal(item)`` says when to
    stop; ``finished()`` is asked when a stream resumed by id closes with
    nothing new (PROTOCOL.md: the task may be over) and returns True to end
    quietly.
    """

    def __init__(
        self,
        transport: Transport,
        path: str,
        scope: _Abort,
        *,
        is_terminal: Callable[[T], bool],
        finished: Callable[[], bool] = lambda: False,
        last_event_id: Optional[int],
        max_reconnects: int,
        idle_timeout: float,
        max_event_bytes: int,
        accept: str = "text/event-stream",
    ) -> None:
        self.transport = transport
        self.path = path
        self.scope = scope
        self.reader: Optional[Reader[T]] = None  # set by the stream's builder before the first open
        self.is_terminal = is_terminal
        self.finished = finished
        self.last_event_id = last_event_id
        self.max_reconnects = max_reconnects
        self.idle_timeout = idle_timeout
        self.max_event_bytes = max_event_bytes
        self.accept = accept
        self.retry_ms: Optional[int] = None
        self.decoder: Optional[SSEDecoder] = None
        self.response: Optional[requests.Response] = None
        self.done = False
        self.resumed_from = last_event_id  # the id this stream started after (None: from the start)
        self.heard = False  # whether the current connection brought any event (a replayed one too)
        self.opened_and_dropped = False  # whether the last attempt's stream opened, then ended or broke

    def hear(self) -> None:
        """The reader's note that the current connection brought a frame."""
        self.heard = True

    def _reader(self) -> Reader[T]:
        assert self.reader is not None, "Feed.reader is set before the stream is opened"
        return self.reader

    def resume_id(self) -> Optional[int]:
        """The ``Last-Event-ID`` to reopen with: the decoder's last event ID buffer (an id-only block
        sets it, WHATWG), else the last id delivered."""
        decoder = self.decoder
        if decoder is not None and decoder.last_event_id.isascii() and decoder.last_event_id.isdigit():
            if len(decoder.last_event_id) <= 30:
                return int(decoder.last_event_id)
        return self.last_event_id

    # -- one connection -------------------------------------------------

    def open(self) -> Iterator[T]:
        """Open the stream; the iterator yields only new items (decoder chosen by ``Content-Type``)."""
        reader = self._reader()
        # identity: a compressed stream would hold events back until a block fills.
        headers = {"Accept": self.accept, "Cache-Control": "no-store", "Accept-Encoding": "identity"}
        resume = self.resume_id() if reader.uses_ids else None
        if resume is not None:
            headers["Last-Event-ID"] = str(resume)
        response = self.transport.send(
            "GET", self.path, scope=self.scope, headers=headers, stream=True, read_timeout=self.idle_timeout
        )
        self.response = response
        self.heard = False
        content_type = response.headers.get("Content-Type", "")
        media = _media_type(content_type)
        if media == "text/event-stream":
            decoder = self.decoder = SSEDecoder(self.max_event_bytes)
            if resume is not None and not getattr(reader, "undecided", False):
                # WHATWG: the buffer carries over. Not while the dialect is undecided: the carried id
                # would make a hosted event (which has none) look like a PROTOCOL.md one.
                decoder.last_event_id = str(resume)
            return reader.from_sse(decoder.iter_events(self._chunks(response)))
        if media in ("application/x-ndjson", "application/jsonl", "application/x-jsonlines"):
            return reader.from_ndjson(_batches(NDJSONDecoder(self.max_event_bytes), self._chunks(response)))
        self.release()
        raise ProtocolError(f"stream answered 200 with Content-Type {content_type or 'none'!r}")

    def _chunks(self, response: requests.Response) -> Iterator[bytes]:
        read, dechunker, length = _body_reader(response)
        reader = self._reader()
        while True:
            try:
                block = read(_READ_SIZE if length is None else min(_READ_SIZE, length))
                chunk = block if dechunker is None else dechunker.feed(block)
            except ChunkError as exc:
                raise _Drop(f"broken chunked framing: {exc}") from None
            except _READ_ERRORS as exc:
                self.scope.check()
                if self.scope.reason == CLOSE:
                    return
                raise _Drop(describe(exc)) from None
            if not block:
                self.scope.check()
                if dechunker is not None and not dechunker.done and self.scope.reason != CLOSE:
                    raise _Drop("connection closed in the middle of a chunk")
                return
            if length is not None:
                length -= len(block)
            if chunk:
                yield chunk
            if (dechunker is not None and dechunker.done) or length == 0:
                return
            if reader.stale():
                raise _Drop("only heartbeats for the reconcile interval", reconcile=True)

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
        attempt, so tenacity waits before the next one (a reconcile does not:
        it is no failure). After a drop, a reader without ids first recovers
        what the history holds. Returns None when a resumed stream closed empty
        on a finished task, or after ``close()``. Raises ``ConnectionLost``
        after ``max_reconnects`` attempts in a row without a new item.
        """
        pending: Optional[Exception] = drop if drop is not None and not drop.reconcile else None
        recover = drop is not None
        try:
            for attempt in self.transport.policy(
                self.scope, server_delay=self._server_delay, attempts=self.max_reconnects + 1
            ):
                with attempt:
                    if pending is not None:
                        failed, pending = pending, None
                        raise Retryable(failed)
                    if attempt.retry_state.attempt_number > 1:
                        if self._reader().uses_ids:
                            log.info("reconnecting to %s (Last-Event-ID %s)", self.path, self.resume_id())
                        else:
                            log.info("reconnecting to %s (after reading what the task's history holds)", self.path)
                    # A stream without ids re-reads its history after any drop, the first connection's
                    # too (HOSTED.md); an error answer to the request itself is no drop.
                    return self._open_until_item(recover or self.opened_and_dropped)
        except Retryable as exc:
            self.scope.check()
            if self.scope.reason == CLOSE:
                return None  # closed from another thread while (re)connecting: end quietly, no retry
            error = exc.error
            reason = error.reason if isinstance(error, ConnectionLost) else str(error)
            last = self.last_event_id if self._reader().uses_ids else None
            typed = error if isinstance(error, APIError) else None  # a 429 or 5xx keeps its type as the cause
            raise ConnectionLost(reason, task_id=self.scope.task_id, last_event_id=last, error=typed) from typed
        raise AssertionError("unreachable")  # pragma: no cover

    def _open_until_item(self, recover: bool) -> Optional[tuple[Iterator[T], T]]:
        self.opened_and_dropped = False
        while True:
            if self.scope.reason == CLOSE:
                return None  # close() from another thread during a backoff wait: no new request
            if recover:
                recovered = self._reader().recover()
                if recovered:
                    rest: Iterator[T] = iter(recovered[1:])
                    if not self.is_terminal(recovered[-1]):
                        rest = chain(rest, self._open_later())
                    return rest, recovered[0]
            items = self.open()
            try:
                first = next(items, None)
            except _Drop as exc:
                self.release()
                if exc.reconcile:
                    recover = True  # heartbeats only: re-read the history and go on, no attempt spent
                    continue
                self.opened_and_dropped = True
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
            self.opened_and_dropped = True
            raise Retryable(_Drop("stream closed before a terminal event"))

    def _open_later(self) -> Iterator[T]:
        """The stream reopened once the recovered items are handed out; its failures are drops."""
        try:
            items = self.open()
        except Retryable as exc:
            raise _Drop(str(exc)) from None
        yield from items

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
                    if feed._reader().uses_ids:
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
                where = f"event {feed.last_event_id}" if feed._reader().uses_ids else "an update"
                log.info("%s dropped after %s: %s", feed.path, where, exc)
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
