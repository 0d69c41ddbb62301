"""Random bytes in random chunkings: the decoder raises only ``ProtocolError`` and never holds more than its cap.

``HYPOTHESIS_PROFILE=ci`` (tests/conftest.py) runs ten times the examples.
The bytes are drawn from SSE-ish material (field names, line ends of every
kind, BOMs, NULs, invalid UTF-8, huge digit strings) as well as from any byte
at all, and cut at random places; the decoder is checked between chunks.
"""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given
from hypothesis import strategies as st

from inferencesh import ProtocolError
from inferencesh._sse import ServerSentEvent, SSEDecoder

CAP = 256

pieces = st.sampled_from(
    [
        b"data:",
        b"data: ",
        b"id:",
        b"id: 7",
        b"event:",
        b"event: update",
        b"retry:",
        b"retry: 1000",
        b"retry: " + b"9" * 5000,
        b"id: " + b"9" * 5000,
        b":",
        b": ping",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        b"\r\r",
        b"\xef\xbb\xbf",
        b"\x00",
        b"\xff",
        b"\xc3",
        b"\xed\xa0\x80",
        b"{}",
        b'{"task_id":"t","status":7}',
        b"x" * 100,
        b" ",
    ]
)
streams = st.one_of(
    st.binary(max_size=2048),
    st.lists(pieces, max_size=60).map(b"".join),
    st.lists(st.one_of(pieces, st.binary(max_size=16)), max_size=60).map(b"".join),
)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    parts, start = [], 0
    for point in points:
        parts.append(data[start:point])
        start = point
    parts.append(data[start:])
    return parts


@given(streams, st.lists(st.integers(min_value=0, max_value=4096), max_size=20))
def test_random_bytes_and_chunkings(data: bytes, cuts: list[int]) -> None:
    decoder = SSEDecoder(max_event_bytes=CAP)

    def feed() -> Iterator[bytes]:
        for part in chunked(data, cuts):
            # Between chunks the decoder holds at most one unfinished block, within the cap.
            assert len(decoder._tail) <= CAP + 1
            assert decoder._head is None or len(decoder._head) < 3
            yield part
        assert len(decoder._tail) <= CAP + 1

    events: list[ServerSentEvent] = []
    try:
        for item in decoder.iter_events(feed()):
            assert isinstance(item, ServerSentEvent)
            assert len(item.data.encode("utf-8")) <= CAP
            events.append(item)
    except ProtocolError:
        pass
    if decoder.retry is not None:
        assert 0 <= decoder.retry < 10**15


@given(streams, st.lists(st.integers(min_value=0, max_value=4096), max_size=20))
def test_chunking_never_changes_the_outcome(data: bytes, cuts: list[int]) -> None:
    """The same bytes in one piece or in many give the same events and the same verdict."""

    def decode(parts: list[bytes]) -> tuple[list[ServerSentEvent], bool, object]:
        decoder = SSEDecoder(max_event_bytes=CAP)
        out: list[ServerSentEvent] = []
        try:
            out.extend(decoder.iter_events(iter(parts)))
        except ProtocolError:
            return out, True, decoder.retry
        return out, False, decoder.retry

    whole = decode([data])
    split = decode(chunked(data, cuts))
    assert whole[:2] == split[:2]  # the same events, and the same verdict
    if not whole[1]:
        assert whole[2] == split[2]  # and the same reconnection time
