"""Bytes → JSON objects, one per line (NDJSON), incrementally. No I/O.

``NDJSONDecoder`` turns the chunks of one stream, cut anywhere, into the JSON
objects of its lines, each yielded as soon as its line ending has arrived:

* a line ends with LF or CRLF (the CR directly before the LF is dropped, also
  when it ends one chunk and the LF starts the next); a lone CR ends nothing
  (inside a line it is JSON whitespace);
* blank lines (empty, or only JSON whitespace: space, tab, CR) are skipped;
* one UTF-8 BOM at the very start of the stream is dropped (anywhere else it
  makes its line invalid JSON);
* every other line must be UTF-8 holding one JSON object, parsed by
  ``json.loads`` (strict: no control characters inside strings; like
  ``json.loads`` it accepts ``NaN``, ``Infinity`` and ``-Infinity``, and the
  last of duplicate keys wins). Invalid UTF-8, text that is not JSON, JSON
  nested too deeply for Python, and JSON that is not an object (array,
  string, number, ``true``, ``false``, ``null``) raise ``ProtocolError`` with
  at most an 80-character excerpt of the line;
* an unfinished last line at the end of the stream is never parsed nor
  yielded: the caller treats such an end as a drop; ``pending`` tells whether
  one is buffered.

A line longer than ``max_event_bytes`` (the cap of ``_sse``: 8 MiB by default;
the line ending and the leading BOM do not count) raises ``ProtocolError`` as
soon as the buffered unfinished line is over the cap, so the decoder never
holds more than the cap (a CR that may be the start of a CRLF is remembered as
a flag, not a byte). A ``ProtocolError`` ends the stream: the decoder drops
its buffer and raises it again if used further.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Optional

from ._errors import ProtocolError
from ._sse import DEFAULT_MAX_EVENT_BYTES

__all__ = ["NDJSONDecoder"]

_BOM = b"\xef\xbb\xbf"
_BLANK = b" \t\r"  # JSON whitespace that can be inside a line
_EXCERPT = 80


class NDJSONDecoder:
    """Incremental decoder of one NDJSON stream (one connection).

    ``max_event_bytes`` caps the length of one line; ``pending`` is true while
    an unfinished, non-blank line is buffered.
    """

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self._parts: list[bytes] = []  # the unfinished line, as received (never joined until its LF comes)
        self._size = 0  # bytes in _parts
        self._cr = False  # a CR after the _parts was set aside: the line is exactly at the cap
        self._head: Optional[bytes] = b""  # bytes seen before the BOM check; None once done
        self._error: Optional[str] = None  # the message of the ProtocolError that ended the stream

    @property
    def pending(self) -> bool:
        """True if the bytes after the last line end are an unfinished line that is not blank.

        Blank leftovers (spaces, tabs, the CR of a CRLF whose LF never came) are not
        pending: finished, they would have yielded nothing.
        """
        if self._head:
            return True
        return any(part.strip(_BLANK) for part in self._parts)

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        """Decode the next ``chunk`` of the stream; return the objects whose lines it completed.

        Raises ``ProtocolError`` as ``iter_objects`` does; the objects this chunk
        completed before the offending line are then lost (``iter_objects``
        yields them before raising).
        """
        return list(self.iter_objects((chunk,)))

    def iter_objects(self, chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
        """Decode ``chunks`` (bytes in arrival order) into one JSON object per complete line.

        Each object is yielded as soon as its line ending has arrived, before the
        next chunk is pulled. When ``chunks`` is exhausted an unfinished last line
        stays buffered and unparsed (see ``pending``); calling ``iter_objects`` or
        ``feed`` again continues the same stream, provided the previous iterator
        was run to its end. Raises ``ProtocolError`` for a line over the cap, one
        that is not UTF-8, not JSON or not a JSON object (after yielding every
        object before it), and again on every later call.
        """
        if self._error is not None:
            raise ProtocolError(self._error)
        loads = json.loads
        cap = self.max_event_bytes
        parts = self._parts
        bom = self._head is not None
        try:
            for chunk in chunks:
                if bom:
                    chunk = self._drop_bom(chunk)
                    bom = self._head is not None
                if parts:
                    if not chunk:
                        continue
                    joined = self._join(chunk)
                    if joined is None:
                        continue
                    chunk = joined
                lines = chunk.split(b"\n")
                tail = lines.pop()
                too_long = self._cut_at_long_line(lines) if len(chunk) > cap else False
                for line in lines:
                    try:
                        obj = loads(line.decode())
                    except (ValueError, RecursionError) as exc:
                        if not line.strip(_BLANK):
                            continue
                        raise _bad_line(line, exc) from None
                    if type(obj) is not dict:
                        raise _bad_line(line, obj)
                    yield obj
                if too_long:
                    raise self._too_large()
                if tail:
                    self._hold(tail)
        except ProtocolError as exc:
            self._error = str(exc)
            parts.clear()
            self._size = 0
            self._cr = False
            raise

    def _drop_bom(self, chunk: bytes) -> bytes:
        head = self._head + chunk if self._head else chunk
        if len(head) < len(_BOM) and _BOM.startswith(head):
            self._head = head
            return b""
        self._head = None
        return head[len(_BOM) :] if head.startswith(_BOM) else head

    def _join(self, chunk: bytes) -> Optional[bytes]:
        """The held line plus ``chunk`` when ``chunk`` ends it (else hold ``chunk``, return None)."""
        parts = self._parts
        if self._cr:
            if not chunk.startswith(b"\n"):
                raise self._too_large()
            self._cr = False
            parts.append(b"\r")
        elif b"\n" not in chunk:
            self._hold(chunk)
            return None
        parts.append(chunk)
        joined = b"".join(parts)
        parts.clear()
        self._size = 0
        return joined

    def _hold(self, piece: bytes) -> None:
        """Buffer ``piece`` of the unfinished line, raising once the line is over the cap."""
        size = self._size + len(piece)
        if size > self.max_event_bytes:
            if size == self.max_event_bytes + 1 and piece.endswith(b"\r") and not self._cr:
                piece = piece[:-1]  # maybe the CR of a CRLF: the line may still be exactly at the cap
                size -= 1
                self._cr = True
            else:
                raise self._too_large()
        self._parts.append(piece)
        self._size = size

    def _cut_at_long_line(self, lines: list[bytes]) -> bool:
        """Drop the first line over the cap and those after it; tell whether there was one."""
        cap = self.max_event_bytes
        for index, line in enumerate(lines):
            if len(line) > cap and (len(line) > cap + 1 or not line.endswith(b"\r")):
                del lines[index:]
                return True
        return False

    def _too_large(self) -> ProtocolError:
        return ProtocolError(f"NDJSON line larger than the {self.max_event_bytes}-byte cap")


def _bad_line(line: bytes, problem: object) -> ProtocolError:
    """The error for ``line``: ``problem`` is the decoding exception or the non-object value."""
    if line.endswith(b"\r"):
        line = line[:-1]
    excerpt = line[: _EXCERPT * 4].decode("utf-8", "replace")
    excerpt = excerpt[:_EXCERPT] + "…" if len(excerpt) > _EXCERPT else excerpt
    if isinstance(problem, UnicodeDecodeError):
        why = "is not valid UTF-8"
    elif isinstance(problem, json.JSONDecodeError):
        why = f"is not valid JSON ({problem.msg} at column {problem.colno})"
    elif isinstance(problem, RecursionError):
        why = "is not valid JSON (nested too deeply)"
    elif isinstance(problem, BaseException):  # e.g. an integer of more than 4,300 digits
        why = f"is not valid JSON ({str(problem).partition(':')[0][:_EXCERPT]})"
    else:
        why = f"holds a JSON {_json_type(problem)}, not an object"
    return ProtocolError(f"NDJSON line {why}: {excerpt!r}")


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "number"
