"""``inferencesh._ndjson``: one JSON object per LF- or CRLF-ended line, incrementally.

* line ends, blank lines, the BOM and the unfinished last line (``pending``),
  each also fed in every possible split;
* the cap (``max_event_bytes``): exactly at it passes, one byte over raises,
  a never-ending line raises without being buffered past the cap;
* UTF-8, JSON and "object only" rules, all raising ``ProtocolError`` with a short message;
* hypothesis: any chunking of a stream of random objects gives those objects,
  and random bytes in random chunkings raise nothing but ``ProtocolError``,
  never make the decoder hold more than its cap, and do not depend on the chunking.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from inferencesh._ndjson import NDJSONDecoder
from inferencesh._sse import DEFAULT_MAX_EVENT_BYTES

try:
    from inferencesh import ProtocolError
except ImportError:  # the package does not export it yet
    from inferencesh._errors import ProtocolError

Obj = dict[str, Any]
BOM = b"\xef\xbb\xbf"


def decode(chunks: Iterable[bytes], max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> list[Obj]:
    return list(NDJSONDecoder(max_event_bytes).iter_objects(chunks))


def decode_until_error(chunks: Iterable[bytes], max_event_bytes: int) -> tuple[list[str], bool, bool]:
    """Objects yielded before a ``ProtocolError`` (if any, as JSON: NaN != NaN), whether one was raised, ``pending``."""
    decoder = NDJSONDecoder(max_event_bytes)
    objects: list[str] = []
    try:
        for obj in decoder.iter_objects(chunks):
            objects.append(json.dumps(obj))
    except ProtocolError:
        return objects, True, False
    return objects, False, decoder.pending


def cut(stream: bytes, points: Iterable[int]) -> list[bytes]:
    """Split ``stream`` at ``points`` (any order, duplicates give empty chunks)."""
    bounds = [0, *sorted(points), len(stream)]
    return [stream[a:b] for a, b in zip(bounds, bounds[1:])]


def every_split(stream: bytes) -> Iterator[list[bytes]]:
    """The stream whole, in every 2- and 3-way split, and byte by byte with empty chunks between."""
    n = len(stream)
    for i in range(n + 1):
        for j in range(i, n + 1):
            yield cut(stream, [i, j])
    yield [piece for i in range(n) for piece in (b"", stream[i : i + 1])] + [b""]


def check_every_split(stream: bytes, expected: list[Obj], max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
    for chunks in every_split(stream):
        assert decode(chunks, max_event_bytes) == expected, chunks


# --------------------------------------------------------------------------
# Line ends, blank lines, BOM, the unfinished last line.
# --------------------------------------------------------------------------

A, B, C = {"a": 1}, {"b": [2, {"c": None}]}, {"c": "x y"}


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (b'{"a":1}\n{"b":[2,{"c":null}]}\n{"c":"x y"}\n', [A, B, C]),
        (b'{"a":1}\r\n{"b":[2,{"c":null}]}\r\n{"c":"x y"}\r\n', [A, B, C]),
        (b'{"a":1}\r\n{"b":[2,{"c":null}]}\n{"c":"x y"}\r\n', [A, B, C]),
        (b'\n\n{"a":1}\n\r\n  \n\t \r\n \r \n{"b":[2,{"c":null}]}\n\n', [A, B]),
        (b'  {"a":1}  \r\n\t{"c":"x y"}\t\n', [A, C]),
        (b'{"a":1}\r\r\n', [A]),  # only the CR before the LF is the line end; the other is whitespace
        (b'{"a":\r1}\n', [A]),  # a lone CR does not end a line
        (BOM + b'{"a":1}\n', [A]),
        (BOM + b'\r\n{"a":1}\r\n', [A]),
        (b"", []),
        (b"\n\r\n", []),
        (BOM, []),
    ],
    ids=[
        "lf",
        "crlf",
        "mixed",
        "blank-lines",
        "padded",
        "cr-cr-lf",
        "lone-cr",
        "bom",
        "bom-blank",
        "empty",
        "only-blank",
        "only-bom",
    ],
)
def test_line_ends_blank_lines_bom(stream: bytes, expected: list[Obj]) -> None:
    check_every_split(stream, expected)


def test_cr_split_from_its_lf() -> None:
    chunks = [b'{"a":1}\r', b'\n{"b":[2,{"c":null}]}\r', b"\n\r", b"\n", b'{"c":"x y"}\r', b"", b"\n"]
    assert decode(chunks) == [A, B, C]


def test_bom_only_at_the_very_start() -> None:
    with pytest.raises(ProtocolError, match="not valid JSON"):
        decode([BOM + BOM + b'{"a":1}\n'])
    with pytest.raises(ProtocolError, match="not valid JSON"):
        decode([b'{"a":1}\n' + BOM + b'{"a":1}\n'])
    with pytest.raises(ProtocolError):
        decode([b"\xef\xbb", b'{"a":1}\n'])  # half a BOM is invalid UTF-8, not a BOM


@pytest.mark.parametrize(
    "stream",
    [b'{"a":1}\n{"b":', b'{"a":1}\r\n{', b'{"a":1}\n{"b":2}', b'{"a":1}\n{"b":2}\r', b'{"a":1}\n \tx', b"\xef"],
)
def test_unfinished_last_line_is_not_yielded_and_pending(stream: bytes) -> None:
    expected = [A] if stream.startswith(b'{"a":1}') else []
    for chunks in every_split(stream):
        decoder = NDJSONDecoder()
        assert list(decoder.iter_objects(chunks)) == expected, chunks
        assert decoder.pending, chunks


@pytest.mark.parametrize("stream", [b'{"a":1}\n', b'{"a":1}\r\n', b'{"a":1}\n \r', b'{"a":1}\n  \t', b"", BOM + b"\r"])
def test_nothing_pending_after_complete_or_blank_end(stream: bytes) -> None:
    """Whitespace after the last line end (even a CR waiting for its LF) is not a lost line."""
    for chunks in every_split(stream):
        decoder = NDJSONDecoder()
        assert list(decoder.iter_objects(chunks)) == ([A] if stream.startswith(b"{") else []), chunks
        assert not decoder.pending, chunks


def test_pending_line_is_finished_by_a_later_call() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a"') == []
    assert decoder.pending
    assert list(decoder.iter_objects([b":1", b"}\r"])) == []
    assert decoder.pending
    assert decoder.feed(b'\n{"b":[2,{"c":null}]}\n{"c"') == [A, B]
    assert decoder.pending
    assert decoder.feed(b':"x y"}\n') == [C]
    assert not decoder.pending


def test_object_yielded_before_next_chunk_is_pulled() -> None:
    pulled: list[int] = []

    def source() -> Iterator[bytes]:
        for index, chunk in enumerate([b'{"a":1', b"}\r", b'\n{"b":[2,{"c":null}]}\n{"c":"x y"}\n', b"{"]):
            pulled.append(index)
            yield chunk
        raise AssertionError("the decoder pulled a chunk it did not need")

    objects = NDJSONDecoder().iter_objects(source())
    assert next(objects) == A
    assert pulled == [0, 1, 2]
    assert next(objects) == B
    assert next(objects) == C
    assert pulled == [0, 1, 2]


# --------------------------------------------------------------------------
# Values: nested objects, unicode, the number extensions json.loads accepts.
# --------------------------------------------------------------------------


def test_nested_objects() -> None:
    obj = {"a": {"b": {"c": [1, {"d": {"e": []}}], "f": {}}}, "g": [[[{}]]]}
    assert decode([json.dumps(obj).encode() + b"\n"]) == [obj]


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_unicode_and_line_separators_inside_strings(ensure_ascii: bool) -> None:
    """U+2028, U+2029, U+0085, VT and FF are not line ends (str.splitlines would cut there)."""
    obj = {"text": "a\u2028b\u2029c\x85d\x0be\x0cf é ☃ 😀 \ufeff", "k\u2028": "\r\n"}
    stream = json.dumps(obj, ensure_ascii=ensure_ascii).encode() + b"\r\n"
    if not ensure_ascii:
        assert "\u2028".encode() in stream
    check_every_split(stream, [obj])


def test_nan_and_infinity_are_accepted_like_json_loads() -> None:
    (obj,) = decode([b'{"a":NaN,"b":Infinity,"c":-Infinity,"d":1e999}\n'])
    assert math.isnan(obj["a"])
    assert obj["b"] == obj["d"] == math.inf
    assert obj["c"] == -math.inf


def test_duplicate_keys_last_wins() -> None:
    assert decode([b'{"a":1,"a":2}\n']) == [{"a": 2}]


def test_many_lines_in_one_chunk() -> None:
    objects = [{"n": n, "s": "x" * (n % 7)} for n in range(1000)]
    stream = b"".join(json.dumps(o).encode() + (b"\r\n" if n % 2 else b"\n") for n, o in enumerate(objects))
    assert decode([stream]) == objects
    assert decode(stream[i : i + 4096] for i in range(0, len(stream), 4096)) == objects


# --------------------------------------------------------------------------
# Bad lines: ProtocolError with a short message, after the objects before them.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "match"),
    [
        (b'{"a":"\xff"}', "not valid UTF-8"),
        (b'{"a":"\xc0\xaf"}', "not valid UTF-8"),  # overlong
        (b'{"a":"\xed\xa0\x80"}', "not valid UTF-8"),  # encoded surrogate (json.loads(bytes) would accept it)
        (b'{"a":"\xe2\x82"}', "not valid UTF-8"),  # truncated
        ('{"a":1}'.encode("utf-16-le"), "not valid JSON"),  # json.loads(bytes) would accept UTF-16
        (b"{'a': 1}", "not valid JSON"),
        (b'{"a":1', "not valid JSON"),
        (b'{"a":1}}', "not valid JSON"),
        (b'{"a":1} {"b":2}', "not valid JSON"),
        (b'{"a":"tab\there"}', "not valid JSON"),  # control character inside a string
        (b"data: {}", "not valid JSON"),
        (b"\x00", "not valid JSON"),
        (b"\x0c{}", "not valid JSON"),  # form feed is not JSON whitespace
        (b"[1, 2]", "JSON array, not an object"),
        (b'"text"', "JSON string, not an object"),
        (b"42", "JSON number, not an object"),
        (b"-1.5e3", "JSON number, not an object"),
        (b"NaN", "JSON number, not an object"),
        (b"true", "JSON true, not an object"),
        (b"null", "JSON null, not an object"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),  # RecursionError inside json
        (b'{"a":' + b"9" * 5000 + b"}", "Exceeds the limit"),  # int() refuses more than 4,300 digits (3.11+)
    ],
)
def test_bad_line_raises_protocol_error_after_earlier_objects(line: bytes, match: str) -> None:
    if line.startswith(b'{"a":' + b"9"):
        try:
            int("9" * 5000)
        except ValueError:
            pass
        else:
            line = b"[]"  # Python 3.9/3.10 without the digit limit: test the object rule instead
            match = "JSON array"
    stream = b'{"a":1}\r\n' + line + b"\r\n" + b'{"c":"x y"}\n'
    for chunks in ([stream], cut(stream, [5, len(stream) - 3]), [stream[i : i + 7] for i in range(0, len(stream), 7)]):
        got: list[Obj] = []
        with pytest.raises(ProtocolError, match=match) as info:
            for obj in NDJSONDecoder().iter_objects(chunks):
                got.append(obj)
        assert got == [A]
        assert len(str(info.value)) < 200  # an excerpt, never the whole line


def test_message_excerpt_is_at_most_80_characters() -> None:
    line = b'{"a": "' + "é".encode() * 1000 + b'"'
    with pytest.raises(ProtocolError) as info:
        decode([line + b"\n"])
    message = str(info.value)
    assert '{"a": "' + "é" * 73 + "…" in message
    assert "é" * 74 not in message


def test_error_ends_the_stream() -> None:
    decoder = NDJSONDecoder()
    with pytest.raises(ProtocolError):
        decoder.feed(b'{"a":1}\n[]\n{"b":')
    assert not decoder.pending
    with pytest.raises(ProtocolError, match="array"):
        decoder.feed(b'2}\n{"a":1}\n')


# --------------------------------------------------------------------------
# The cap.
# --------------------------------------------------------------------------

CAP = 16
AT_CAP = b'{"a":"' + b"x" * 8 + b'"}'  # 16 bytes
OVER_CAP = b'{"a":"' + b"x" * 9 + b'"}'  # 17 bytes


def test_default_cap() -> None:
    assert NDJSONDecoder().max_event_bytes == DEFAULT_MAX_EVENT_BYTES == 8 * 1024 * 1024


@pytest.mark.parametrize("end", [b"\n", b"\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("bom", [b"", BOM], ids=["", "bom"])
def test_line_at_the_cap_passes_in_any_split(end: bytes, bom: bytes) -> None:
    """Neither the line end nor the BOM counts."""
    assert len(AT_CAP) == CAP
    stream = bom + AT_CAP + end + b" " * CAP + end + AT_CAP + end
    check_every_split(stream, [{"a": "x" * 8}] * 2, CAP)


@pytest.mark.parametrize(
    "stream",
    [
        OVER_CAP + b"\n",
        OVER_CAP + b"\r\n",
        AT_CAP + b" \n",
        AT_CAP + b"\r\r\n",
        AT_CAP + b"\rx",  # the CR was not the start of a CRLF: the line goes on past the cap
        b" " * (CAP + 1) + b"\n",  # a blank line counts too
        AT_CAP + b"\n" + OVER_CAP,  # unfinished, but already over the cap
    ],
)
def test_line_one_byte_over_the_cap_raises_in_any_split(stream: bytes) -> None:
    for chunks in every_split(stream):
        got: list[Obj] = []
        with pytest.raises(ProtocolError, match="16-byte cap"):
            for obj in NDJSONDecoder(CAP).iter_objects(chunks):
                got.append(obj)
        assert got == ([{"a": "x" * 8}] if stream.startswith(AT_CAP + b"\n") else []), chunks


def test_cap_is_per_line() -> None:
    assert decode([(AT_CAP + b"\n") * 100], CAP) == [{"a": "x" * 8}] * 100


def test_unfinished_line_at_the_cap_is_kept() -> None:
    for stream in (AT_CAP, AT_CAP + b"\r"):
        decoder = NDJSONDecoder(CAP)
        assert list(decoder.iter_objects([stream[:3], stream[3:]])) == []
        assert decoder.pending
        assert sum(map(len, decoder._parts)) <= CAP
        assert decoder.feed(b"\n") == [{"a": "x" * 8}]


@pytest.mark.parametrize("piece", [b"x" * 7, b"y", b"\r", b" ", b'{"a":[' * 3], ids=["x7", "y", "cr", "space", "open"])
def test_never_ending_line_raises_once_past_the_cap(piece: bytes) -> None:
    decoder = NDJSONDecoder(64)
    received = 0

    def source() -> Iterator[bytes]:
        nonlocal received
        for chunk in itertools.chain([b'{"a":1}\n{'], itertools.repeat(piece)):
            assert sum(map(len, decoder._parts)) <= 64  # never holds more than the cap
            received += len(chunk)
            yield chunk

    got: list[Obj] = []
    with pytest.raises(ProtocolError, match="64-byte cap"):
        for obj in decoder.iter_objects(source()):
            got.append(obj)
    assert got == [A]
    # It stopped reading once over the cap (a CR at cap + 1 may be the start of a CRLF, so one more piece then).
    assert received - len(b'{"a":1}\n') <= 64 + 1 + len(piece)
    assert decoder._parts == []


def test_default_cap_allows_large_lines() -> None:
    obj = {"data": "x" * (1024 * 1024)}
    stream = json.dumps(obj).encode() + b"\n"
    assert decode(stream[i : i + 1000] for i in range(0, len(stream), 1000)) == [obj]


# --------------------------------------------------------------------------
# Hypothesis: random objects in random chunkings; random bytes.
# --------------------------------------------------------------------------

TEXT = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=6),
    st.sampled_from(["", "a", "\u2028", "\u2029", "\x85", "\r\n", "\n", "\ufeff", "\x00", "é☃😀"]),
)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=4,
)
OBJECTS = st.dictionaries(TEXT, JSON_VALUES, max_size=3)
LINE_ENDS = st.sampled_from([b"\n", b"\r\n"])
BLANKS = st.sampled_from([b"", b"", b" ", b"\t", b"\r", b" \t\r "])


UNFINISHED = st.sampled_from([b"", b"", b"{", b'{"a', b'{"a":1}', b'{"a":1}\r', b' {"\xc3', b"[]", b"\xef\xbb"])
LINES = st.tuples(
    OBJECTS,
    st.sampled_from([(True, None), (False, None), (False, (",", ":"))]),  # ensure_ascii, separators
    BLANKS,  # before the object
    BLANKS,  # after it
    LINE_ENDS,
    st.lists(st.tuples(BLANKS, LINE_ENDS), max_size=2),  # blank lines after it
)


@st.composite
def object_streams(draw: st.DrawFn) -> tuple[list[Obj], bytes]:
    """Objects, and a stream of them: LF or CRLF per line, padding, blank lines, maybe a BOM and a dangling line."""
    lines = draw(st.lists(LINES, max_size=5))
    parts = [draw(st.sampled_from([b"", BOM, BOM + b"\r\n", b" \n"]))]
    for obj, (ascii_only, separators), before, after, end, blank_lines in lines:
        text = json.dumps(obj, ensure_ascii=ascii_only, separators=separators)
        parts.append(before + text.encode() + after + end)
        parts.extend(blank + blank_end for blank, blank_end in blank_lines)
    parts.append(draw(UNFINISHED))  # never yielded
    return [line[0] for line in lines], b"".join(parts)


@st.composite
def chunkings(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    """Cut points anywhere, but often just after a CR (the tricky place)."""
    point = st.integers(0, len(stream))
    after_cr = [i + 1 for i, byte in enumerate(stream) if byte == 13]
    if after_cr:
        point = st.one_of(point, st.sampled_from(after_cr))
    return cut(stream, draw(st.lists(point, max_size=12)))


@given(object_streams(), st.data())
@example(([A], b'{"a":1}\r\n'), None)
def test_any_chunking_gives_the_same_objects(case: tuple[list[Obj], bytes], data: Any) -> None:
    objects, stream = case
    assert decode([stream]) == objects
    chunks = data.draw(chunkings(stream)) if data is not None else [stream[:-1], stream[-1:]]
    assert decode(chunks) == objects
    assert decode([stream[i : i + 1] for i in range(len(stream))]) == objects


FUZZ_CAP = 64
PIECES = st.sampled_from(
    [
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        b" ",
        b"\t",
        BOM,
        b"\xef\xbb",
        b"\x00",
        b"\xff",
        b"\xc3",
        b"\xed\xa0\x80",
        b"{}",
        b'{"a":1}',
        b'{"a":[',
        b"]}",
        b"[1]",
        b'"s"',
        b"7",
        b"NaN",
        b"[" * 40,
        b'{"n":' + b"9" * 5000 + b"}",
        b"x" * 30,
        b"\xe2\x80\xa8",
    ]
)
RANDOM_STREAMS = st.one_of(
    st.binary(max_size=512),
    st.lists(PIECES, max_size=40).map(b"".join),
    st.lists(st.one_of(PIECES, st.binary(max_size=16)), max_size=40).map(b"".join),
)


@given(RANDOM_STREAMS, st.data())
@example(b"[" * 40 + b"\n", None)
@example(b" " * 64 + b"\r", None)
def test_random_bytes_raise_only_protocol_error_within_the_cap(stream: bytes, data: Any) -> None:
    chunks = data.draw(chunkings(stream)) if data is not None else [stream]
    decoder = NDJSONDecoder(FUZZ_CAP)

    def source() -> Iterator[bytes]:
        for chunk in chunks:
            assert decoder._size == sum(map(len, decoder._parts)) <= FUZZ_CAP
            assert decoder._head is None or len(decoder._head) < len(BOM)
            yield chunk
        assert decoder._size == sum(map(len, decoder._parts)) <= FUZZ_CAP

    try:
        for obj in decoder.iter_objects(source()):
            assert type(obj) is dict
            assert len(json.dumps(obj)) <= 6 * FUZZ_CAP
    except ProtocolError:
        assert decoder._parts == []
    # The same bytes in one piece, byte by byte, or cut anywhere: the same objects, verdict and ``pending``.
    whole = decode_until_error([stream], FUZZ_CAP)
    assert decode_until_error(chunks, FUZZ_CAP) == whole
    assert decode_until_error([stream[i : i + 1] for i in range(len(stream))], FUZZ_CAP) == whole
