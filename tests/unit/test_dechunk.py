"""The bulk de-chunker: any chunking of any chunked body gives its payload; broken framing is a ChunkError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferencesh._dechunk import ChunkError, Dechunker


def encode(chunks: list[bytes], extension: bool = False) -> bytes:
    ext = b";name=value" if extension else b""
    return b"".join(b"%x%s\r\n%s\r\n" % (len(c), ext, c) for c in chunks if c) + b"0\r\n\r\n"


def feed_all(decoder: Dechunker, pieces: list[bytes]) -> bytes:
    return b"".join(decoder.feed(piece) for piece in pieces)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({p % (len(data) + 1) for p in points})
    bounds = [0, *marks, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


@given(
    st.lists(st.binary(min_size=0, max_size=300), max_size=30),
    st.lists(st.integers(min_value=0), max_size=40),
    st.booleans(),
)
def test_any_chunking_gives_the_payload(chunks: list[bytes], points: list[int], extension: bool) -> None:
    body = encode(chunks, extension)
    decoder = Dechunker()
    assert feed_all(decoder, cut(body, points)) == b"".join(chunks)
    assert decoder.done


def test_byte_by_byte_and_in_one_piece() -> None:
    chunks = [b"id: 1\ndata: {}\n\n", b"x" * 4000, b"\r\n" * 3]
    body = encode(chunks)
    one, many = Dechunker(), Dechunker()
    assert one.feed(body) == b"".join(chunks)
    assert feed_all(many, [body[i : i + 1] for i in range(len(body))]) == b"".join(chunks)
    assert one.done and many.done


def test_nothing_after_the_last_chunk() -> None:
    decoder = Dechunker()
    assert decoder.feed(encode([b"abc"]) + b"garbage") == b"abc"
    assert decoder.feed(b"more") == b""


def test_upper_case_hex_and_padding() -> None:
    assert Dechunker().feed(b"A \r\n0123456789\r\n0\r\n\r\n") == b"0123456789"


@pytest.mark.parametrize(
    "body",
    [b"zz\r\nabc\r\n", b"-1\r\nx\r\n", b"\r\nabc", b"3\r\nabcXY", b"3\r\nabc\n", b"1" * 2000, b"0x3\r\nabc\r\n"],
)
def test_broken_framing_is_a_chunk_error(body: bytes) -> None:
    decoder = Dechunker()
    with pytest.raises(ChunkError):
        decoder.feed(body + b"\r\n" * 600)
        decoder.feed(b"")  # the payload before the break came first; the error follows


def test_the_payload_before_a_break_is_handed_out_first() -> None:
    decoder = Dechunker()
    assert decoder.feed(b"3\r\nabc\r\nzz\r\n") == b"abc"
    with pytest.raises(ChunkError):
        decoder.feed(b"")


def test_an_endless_size_line_is_refused_without_growing() -> None:
    decoder = Dechunker()
    with pytest.raises(ChunkError):
        for _ in range(100):
            decoder.feed(b"f" * 64)


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_random_bytes_raise_only_chunk_error(pieces: list[bytes]) -> None:
    decoder = Dechunker()
    try:
        feed_all(decoder, pieces)
    except ChunkError:
        pass
