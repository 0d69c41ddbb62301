"""HTTP/1.1 chunked transfer coding, undone in bulk (RFC 9112 §7.1). No I/O.

A stream read straight from the socket's buffer comes in blocks that hold
many small chunks (a server such as uvicorn sends one chunk per event).
``Dechunker.feed(block)`` returns the payload bytes of every chunk completed
or continued in ``block``, joined, so the decoders behind it see one large
piece instead of one piece per chunk: reading through urllib3 costs several
microseconds a chunk, this a fraction of one.

Rules: a size line is hexadecimal digits, optionally followed by ``;``
extensions (ignored), ended by CRLF; the data is followed by CRLF; a chunk
of size 0 ends the body (trailer fields are not read: the stream ends
there). A size line longer than 1 KiB, a size that is not hexadecimal, or
data not followed by CRLF raises ``ChunkError`` (a ``ValueError``): the
framing is broken and the connection cannot be trusted, so the caller treats
it as a drop.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["ChunkError", "Dechunker"]

_MAX_SIZE_LINE = 1024
_HEX = frozenset(b"0123456789abcdefABCDEF")


class ChunkError(ValueError):
    """The chunked framing is broken (a bad size line, missing CRLF after the data)."""


class Dechunker:
    """Incremental decoder of one chunked body; ``done`` once the last (size 0) chunk arrived."""

    __slots__ = ("_crlf", "_error", "_left", "_rest", "done")

    def __init__(self) -> None:
        self._error: Optional[ChunkError] = None  # broken framing found after payload that was handed out
        self._rest = b""  # an unfinished size line (or the start of a CRLF)
        self._left = 0  # data bytes still owed by the current chunk
        self._crlf = False  # whether the CRLF after a chunk's data is owed
        self.done = False

    def feed(self, block: bytes) -> bytes:
        """The payload bytes ``block`` brings (possibly ``b""``). Raises ``ChunkError`` for broken framing.

        The payload before a break in the framing is returned first; the error is raised by the next call.
        """
        if self._error is not None:
            raise self._error
        if self.done:
            return b""
        out: list[bytes] = []
        try:
            self._decode(block, out)
        except ChunkError as error:
            if not out:
                raise
            self._error = error
        if not out:
            return b""
        return out[0] if len(out) == 1 else b"".join(out)

    def _decode(self, block: bytes, out: list[bytes]) -> None:
        data = self._rest + block if self._rest else block
        self._rest = b""
        size = len(data)
        pos = 0
        left = self._left
        if left:  # the rest of a chunk begun in an earlier block
            if left > size:
                out.append(data)
                self._left = left - size
                return
            out.append(data[:left])
            pos = left
            self._left = 0
            self._crlf = True
        if self._crlf:
            if size - pos < 2:
                self._rest = data[pos:]
                return
            if data[pos] != 13 or data[pos + 1] != 10:
                raise ChunkError("chunk data not followed by CRLF")
            pos += 2
            self._crlf = False
        find = data.find
        append = out.append
        while pos < size:  # whole chunks, state in locals: the hot loop
            end = find(b"\r\n", pos, pos + _MAX_SIZE_LINE + 2)
            if end < 0:
                if size - pos > _MAX_SIZE_LINE:
                    raise ChunkError("chunk size line too long")
                break
            length = _size(data[pos:end])
            start = end + 2
            if length == 0:
                self.done = True
                return
            stop = start + length
            if stop + 2 <= size:
                if data[stop] != 13 or data[stop + 1] != 10:
                    raise ChunkError("chunk data not followed by CRLF")
                append(data[start:stop])
                pos = stop + 2
                continue
            if stop <= size:  # the data is here, its CRLF not (all of it) yet
                append(data[start:stop])
                self._crlf = True
                pos = stop
                break
            if start < size:
                append(data[start:])
            self._left = stop - size
            return
        if pos < size:
            self._rest = data[pos:]


def _size(line: bytes) -> int:
    """A chunk size line (without its CRLF) as an int (``;`` extensions ignored).

    Raises ``ChunkError`` unless it is hexadecimal digits.
    """
    # The common case, bare digits: int() refuses what is not hex, but for a "0x" prefix, refused here.
    if line.isalnum() and len(line) <= 16 and (len(line) < 2 or line[1] not in b"xX"):
        try:
            return int(line, 16)
        except ValueError:
            raise ChunkError(f"bad chunk size line {line[:40]!r}") from None
    semicolon = line.find(b";")
    digits = (line if semicolon < 0 else line[:semicolon]).strip(b" \t")
    if not digits or not _HEX.issuperset(digits) or len(digits) > 16:
        raise ChunkError(f"bad chunk size line {line[:40]!r}")
    return int(digits, 16)
