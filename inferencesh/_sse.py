"""Bytes → server-sent events, exactly as the WHATWG rules say. No I/O.

sseclient-py parses the fields of each event. On its own it departs from the
WHATWG "event stream interpretation" rules in ways PROTOCOL.md forbids: it
looks for event ends only within one line ending style (``\\n`` then ``\\r\\n``
merges two events), keeps a leading BOM, accepts an ``id`` holding U+0000,
drops ``id``-only blocks (so the last event ID is not updated), does not carry
the last event ID across events, keeps any ``retry`` value, and hands out a
half-received final event at end of stream. ``SSEDecoder`` feeds it so the
result is exact:

* line ends (LF, CR, CRLF, mixed, split across chunks) are normalised to LF
  and the stream is cut into complete blocks at blank lines, whatever the
  chunk boundaries (a CR ending a chunk ends its line at once); a leading BOM
  is dropped; an unfinished block at the end of the stream is discarded, but
  a ``retry`` line of it that did end still applies;
* a block that sseclient would get wrong (one without a ``data`` field, or
  with ``retry`` or U+0000 in it) is cleaned first: ``retry`` is applied here
  only when all ASCII digits (more than 15 of them count as 10^15 − 1 ms),
  ``id`` lines holding U+0000 are ignored;
* the decoder keeps the last event ID buffer across events and stamps it on
  every event it dispatches.

A block larger than ``max_event_bytes`` (a documented cap: 8 MiB by default)
raises ``ProtocolError`` instead of growing memory without bound; so does data
that is not UTF-8.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Optional

import attrs
from sseclient import SSEClient

from ._errors import ProtocolError

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "SSEDecoder", "ServerSentEvent"]

DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024
_RETRY_DIGITS = 15
_MAX_RETRY_MS = 10**_RETRY_DIGITS - 1  # a ``retry`` with more digits counts as this (31,700 years)
_BOM = b"\xef\xbb\xbf"

# sseclient-py logs every event at DEBUG on the logger of its subclass's module (this one): quiet it, so
# that ``infsh --verbose`` (DEBUG on "inferencesh") shows requests and reconnects, not one line per event.
# Whoever wants the lines back sets this logger's level again.
logging.getLogger(__name__).setLevel(logging.WARNING)


@attrs.frozen
class ServerSentEvent:
    """A dispatched event: its type, its data and the last event ID at dispatch time."""

    event: str = "message"
    data: str = ""
    id: str = ""


class _FedSSEClient(SSEClient):
    """sseclient-py's field parser, fed one exact, LF-normalised block at a time."""

    def __init__(self, blocks: Iterator[bytes]) -> None:
        super().__init__(blocks)
        self._blocks = blocks

    def _read(self) -> Iterator[bytes]:
        return self._blocks


class SSEDecoder:
    """Incremental decoder of one event stream (one connection).

    ``last_event_id`` (str) and ``retry`` (milliseconds or None) follow the
    WHATWG rules; set ``last_event_id`` before decoding to resume a count.
    """

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self.last_event_id = ""
        self.retry: Optional[int] = None
        self._tail = b""
        self._head: Optional[bytes] = b""  # bytes seen before the BOM check; None once done
        self._cr = False

    def iter_events(self, chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
        """Decode ``chunks`` (bytes in arrival order) into events as soon as each is complete.

        Raises ``ProtocolError`` for data that is not UTF-8 or a block over the cap.
        """
        parsed = _FedSSEClient(self._blocks(chunks)).events()
        while True:
            try:
                raw = next(parsed)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise ProtocolError("event stream is not valid UTF-8", event_id=self.last_event_id or None) from None
            if raw.id is not None:
                self.last_event_id = raw.id
            yield ServerSentEvent(raw.event, raw.data, self.last_event_id)

    def _blocks(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        try:
            for chunk in chunks:
                text = self._normalise(chunk)
                if text:
                    yield from self._split(text)
        finally:
            self._cr = False
            if b"\n" in self._tail:  # the unfinished block's complete lines: only ``retry`` applies
                self._clean(self._tail.rpartition(b"\n")[0], unfinished=True)
            self._tail = b""

    def _normalise(self, chunk: bytes) -> bytes:
        if self._head is not None:
            head = self._head + chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._head = head
                return b""
            self._head = None
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
        if self._cr and chunk:  # the last chunk ended in CR, already counted as a line end
            self._cr = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return chunk

    def _split(self, text: bytes) -> Iterator[bytes]:
        buffer = self._tail + text if self._tail else text
        blocks = buffer.split(b"\n\n")
        self._tail = blocks.pop()
        if blocks:
            cap = self.max_event_bytes
            # One scan of the whole buffer instead of four per block: with no NUL, no "retry" and
            # no comment line anywhere, a block needs cleaning only when it has no data line.
            # (Comment lines are dropped before sseclient sees them, which decodes every line.)
            plain = b"\0" not in buffer and b"retry" not in buffer and b"\n:" not in buffer
            for block in blocks:
                if len(block) > cap:
                    raise self._too_large()
                if (block.startswith(b"data:") or b"\ndata:" in block) and (
                    plain
                    or (
                        b"\0" not in block
                        and not block.startswith((b"retry", b":"))
                        and b"\nretry" not in block
                        and b"\n:" not in block
                    )
                ):
                    yield block
                elif block.strip(b"\n"):
                    cleaned = self._clean(block)
                    if cleaned is not None:
                        yield cleaned
        if len(self._tail) > self.max_event_bytes and len(self._tail.removesuffix(b"\n")) > self.max_event_bytes:
            raise self._too_large()

    def _clean(self, block: bytes, unfinished: bool = False) -> Optional[bytes]:
        """Apply ``retry`` and U+0000 ``id`` rules; return what sseclient should parse, if anything.

        For the ``unfinished`` block at the end of the stream only ``retry`` is applied.
        """
        kept: list[bytes] = []
        has_data = False
        last_id: Optional[bytes] = None
        for line in block.split(b"\n"):
            if not line or line.startswith(b":"):
                continue
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if name == b"retry":
                if value.isdigit():
                    # Clamped, so that no digit string (int() refuses over 4,300 digits) can raise here.
                    self.retry = int(value) if len(value) <= _RETRY_DIGITS else _MAX_RETRY_MS
                continue
            if name == b"id":
                if b"\0" in value:
                    continue
                last_id = value
            elif name == b"data":
                has_data = True
            kept.append(line)
        if has_data:
            return b"\n".join(kept)
        if last_id is not None and not unfinished:
            try:
                self.last_event_id = last_id.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError("event id is not valid UTF-8") from None
        return None

    def _too_large(self) -> ProtocolError:
        return ProtocolError(f"event larger than the {self.max_event_bytes}-byte cap")
