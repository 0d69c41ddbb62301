"""``inferencesh._sse``: the WHATWG HTML "event stream interpretation", exactly.

Three layers:

* a table of spec vectors, each also fed in every possible split;
* an independent, line-by-line reference implementation of the WHATWG
  algorithm (``reference`` below) and hypothesis properties: the decoder agrees
  with it on random streams, for any chunking, and yields every event as soon
  as its blank line has arrived;
* the documented cap (``max_event_bytes``) and the UTF-8 rule, both raising
  ``ProtocolError``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, Optional

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from inferencesh._sse import DEFAULT_MAX_EVENT_BYTES, ServerSentEvent, SSEDecoder

try:
    from inferencesh import ProtocolError
except ImportError:  # the package does not export it yet
    from inferencesh._errors import ProtocolError

Event = tuple[str, str, str]  # (type, data, lastEventId)


class Outcome(NamedTuple):
    events: list[Event]
    retry: Optional[int]
    last_event_id: str


# --------------------------------------------------------------------------
# The reference: WHATWG HTML, "9.2.6 Interpreting an event stream", line by line.
# --------------------------------------------------------------------------


def reference(stream: bytes, last_event_id: str = "", *, lenient: bool = False) -> Outcome:
    """Interpret ``stream`` as the spec says, for a stream that ends after it.

    ``lenient`` drops undecodable bytes (only meant for a prefix of a valid
    stream, cut inside a character of its unfinished last line).
    """
    text = stream.decode("utf-8", errors="ignore" if lenient else "strict")
    if text.startswith("\ufeff"):  # UTF-8 decode drops one leading BOM
        text = text[1:]
    events: list[Event] = []
    retry: Optional[int] = None
    data = event_type = ""
    id_buffer = last_id = last_event_id
    start = i = 0
    while i < len(text):
        if text[i] not in "\r\n":
            i += 1
            continue
        line = text[start:i]
        i += 2 if text.startswith("\r\n", i) else 1  # CRLF, LF or CR
        start = i
        if line == "":  # dispatch
            last_id = id_buffer
            if data:
                if data.endswith("\n"):
                    data = data[:-1]
                events.append((event_type or "message", data, last_id))
            data = event_type = ""
        elif line.startswith(":"):  # comment
            continue
        else:
            field, colon, value = line.partition(":")
            if colon and value.startswith(" "):
                value = value[1:]
            if field == "event":
                event_type = value
            elif field == "data":
                data += value + "\n"
            elif field == "id":
                if "\0" not in value:
                    id_buffer = value
            elif field == "retry":
                if value and all(c in "0123456789" for c in value):
                    retry = int(value)
    # End of stream: the unfinished line and the pending event are discarded.
    return Outcome(events, retry, last_id)


# --------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------


def as_tuple(event: ServerSentEvent) -> Event:
    return (event.event, event.data, event.id)


def decode(
    chunks: Iterable[bytes],
    last_event_id: str = "",
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> Outcome:
    decoder = SSEDecoder(max_event_bytes)
    decoder.last_event_id = last_event_id
    events = [as_tuple(event) for event in decoder.iter_events(chunks)]
    return Outcome(events, decoder.retry, decoder.last_event_id)


def decode_until_error(chunks: Iterable[bytes], max_event_bytes: int) -> tuple[list[Event], bool]:
    """Events yielded before a ``ProtocolError`` (if any), and whether one was raised."""
    events: list[Event] = []
    try:
        for event in SSEDecoder(max_event_bytes).iter_events(chunks):
            events.append(as_tuple(event))
    except ProtocolError:
        return events, True
    return events, False


def cut(stream: bytes, points: Iterable[int]) -> list[bytes]:
    """Split ``stream`` at ``points`` (any order, duplicates give empty chunks)."""
    bounds = [0, *sorted(points), len(stream)]
    return [stream[a:b] for a, b in zip(bounds, bounds[1:])]


def msg(data: str, id: str = "", event: str = "message") -> Event:
    return (event, data, id)


# --------------------------------------------------------------------------
# (a) Spec vectors.
# --------------------------------------------------------------------------


class Vector(NamedTuple):
    stream: bytes
    events: list[Event]
    retry: Optional[int] = None
    last_event_id: str = ""  # after the stream
    start_id: str = ""  # set on the decoder before decoding


V = Vector
VECTORS: dict[str, Vector] = {
    # Line ends: CRLF, LF, CR, mixed; CRLF is one line end, also at a boundary.
    "lf": V(b"data: a\n\n", [msg("a")]),
    "crlf": V(b"data: a\r\n\r\n", [msg("a")]),
    "cr": V(b"data: a\r\r", [msg("a")]),
    "mixed-in-one-event": V(b"data: a\rdata: b\r\ndata: c\ndata: d\n\r\n", [msg("a\nb\nc\nd")]),
    "lf-then-crlf-dispatches": V(b"data: a\n\r\ndata: b\n\n", [msg("a"), msg("b")]),
    "lf-then-cr-dispatches": V(b"data: a\n\rdata: b\r\r", [msg("a"), msg("b")]),
    "cr-then-crlf-dispatches": V(b"data: a\r\r\ndata: b\r\n\r\n", [msg("a"), msg("b")]),
    "crlf-is-not-two-line-ends": V(b"data: a\r\ndata: b\r\n\r\n", [msg("a\nb")]),
    "lfcr-is-two-line-ends": V(b"data: a\n\r", [msg("a")]),
    "cr-at-very-end-dispatches": V(b"data: a\r\r", [msg("a")]),
    "cr-at-very-end-after-lf": V(b"data: a\n\r", [msg("a")]),
    "cr-at-end-without-blank-line": V(b"data: a\r", []),
    "several-blank-lines": V(b"data: a\n\n\n\r\n\r\rdata: b\n\n", [msg("a"), msg("b")]),
    "leading-blank-lines": V(b"\n\r\n\rdata: a\n\n", [msg("a")]),
    "only-blank-lines": V(b"\n\n\r\n\r\r", []),
    "empty-stream": V(b"", []),
    # BOM: one leading U+FEFF is dropped, any other is data.
    "bom-at-start": V(b"\xef\xbb\xbfdata: a\n\n", [msg("a")]),
    "bom-only-once": V(
        b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n", [msg("b")]
    ),  # second BOM: field "\ufeffdata" is unknown
    "bom-after-first-event": V(b"data: a\n\n\xef\xbb\xbfdata: b\n\n", [msg("a")]),
    "bom-after-blank-line": V(b"\n\xef\xbb\xbfdata: a\n\n", []),
    "bom-in-data-kept": V(b"\xef\xbb\xbfdata: \xef\xbb\xbfa\xef\xbb\xbf\n\n", [msg("\ufeffa\ufeff")]),
    "bom-as-data-value-kept": V(b"data:\xef\xbb\xbf\n\n", [msg("\ufeff")]),
    # Comments.
    "comment": V(b": hello\ndata: a\n:\n:data: b\n\n", [msg("a")]),
    "comment-only-block": V(b": keep-alive\n\n", []),
    "comment-with-crlf": V(b":x\r\n:y\rdata: a\r\n\r\n", [msg("a")]),
    # Field/value split.
    "no-space": V(b"data:a\n\n", [msg("a")]),
    "one-space-removed": V(b"data:  a\n\n", [msg(" a")]),
    "trailing-space-kept": V(b"data: a \n\n", [msg("a ")]),
    "tab-not-removed": V(b"data:\ta\n\n", [msg("\ta")]),
    "split-at-first-colon": V(b"data: a: b:c\n\n", [msg("a: b:c")]),
    "colon-value": V(b"data::\n\n", [msg(":")]),
    "field-names-case-sensitive": V(b"Data: a\nDATA: b\n\n", []),
    "leading-space-field-unknown": V(b" data: a\n\n", []),
    "unknown-fields-ignored": V(b"foo: bar\ndata: a\ndatas: b\ndat: c\nfoo\n\n", [msg("a")]),
    "unknown-field-only-block": V(b"foo: bar\n\ndata: a\n\n", [msg("a")]),
    # data.
    "data-without-colon": V(b"data\n\n", [msg("")]),
    "data-empty-value": V(b"data:\n\n", [msg("")]),
    "data-space-only": V(b"data: \n\n", [msg("")]),
    "two-empty-data-lines": V(b"data\ndata\n\n", [msg("\n")]),
    "multi-line-data": V(b"data: a\ndata: b\ndata\ndata: c\n\n", [msg("a\nb\n\nc")]),
    "only-one-trailing-lf-removed": V(b"data: a\ndata:\n\n", [msg("a\n")]),
    "nul-in-data-kept": V(b"data: a\x00b\n\n", [msg("a\x00b")]),
    "unicode-data": V("data: héllo ☃ 😀\n\n".encode(), [msg("héllo ☃ 😀")]),
    "no-data-no-dispatch": V(b"event: x\nid\n\n", []),
    # event.
    "event-type": V(b"event: ping\ndata: a\n\n", [msg("a", event="ping")]),
    "event-type-reset-after-dispatch": V(b"event: ping\ndata: a\n\ndata: b\n\n", [msg("a", event="ping"), msg("b")]),
    "event-type-reset-by-dataless-block": V(b"event: ping\n\ndata: a\n\n", [msg("a")]),
    "event-empty-is-message": V(b"event:\ndata: a\n\n", [msg("a")]),
    "event-without-colon-is-message": V(b"event\ndata: a\n\n", [msg("a")]),
    "event-last-wins": V(b"event: a\nevent: b\ndata: x\n\n", [msg("x", event="b")]),
    "event-after-data": V(b"data: x\nevent: late\n\n", [msg("x", event="late")]),
    "event-spaces": V(b"event:  odd type \ndata: x\n\n", [msg("x", event=" odd type ")]),
    # id.
    "id": V(b"id: 1\ndata: a\n\n", [msg("a", "1")], last_event_id="1"),
    "id-after-data": V(b"data: a\nid: 5\n\n", [msg("a", "5")], last_event_id="5"),
    "id-last-wins": V(b"id: 1\nid: 2\ndata: a\n\n", [msg("a", "2")], last_event_id="2"),
    "id-persists": V(b"id: 1\ndata: a\n\ndata: b\n\n", [msg("a", "1"), msg("b", "1")], None, "1"),
    "id-only-block-updates-later-events": V(b"data: a\n\nid: 7\n\ndata: b\n\n", [msg("a"), msg("b", "7")], None, "7"),
    "id-with-comment-only-block": V(b"id: 7\n: hi\n\ndata: b\n\n", [msg("b", "7")], None, "7"),
    "id-only-block-at-end": V(b"data: a\n\nid: 9\n\n", [msg("a")], None, "9"),
    "id-without-colon-resets": V(b"id: 1\ndata: a\n\nid\ndata: b\n\n", [msg("a", "1"), msg("b")], None, ""),
    "id-empty-resets": V(b"id: 1\ndata: a\n\nid:\n\ndata: b\n\n", [msg("a", "1"), msg("b")]),
    "id-with-nul-ignored": V(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", [msg("a", "1"), msg("b", "1")], None, "1"),
    "id-with-nul-only-block-ignored": V(b"id: 1\n\nid: \x00\n\ndata: b\n\n", [msg("b", "1")], None, "1"),
    "id-nul-then-valid": V(b"id: 1\nid: \x00\nid: 3\ndata: b\n\n", [msg("b", "3")], None, "3"),
    "id-valid-then-nul": V(b"id: 1\nid: 2\x00\ndata: b\n\n", [msg("b", "1")], None, "1"),
    "id-unicode": V("id: é☃\ndata: a\n\n".encode(), [msg("a", "é☃")], None, "é☃"),
    "id-spaces": V(b"id:  7 \ndata: a\n\n", [msg("a", " 7 ")], None, " 7 "),
    "id-of-unfinished-block-ignored": V(b"id: 1\n\nid: 2\ndata: a\n", [], None, "1"),
    "start-id-carried": V(b"data: a\n\nid: 42\n\ndata: b\n\n", [msg("a", "41"), msg("b", "42")], None, "42", "41"),
    "start-id-reset": V(b"id\n\ndata: a\n\n", [msg("a")], None, "", "41"),
    # retry.
    "retry-digits": V(b"retry: 1500\n\n", [], 1500),
    "retry-no-space": V(b"retry:250\n\n", [], 250),
    "retry-zero": V(b"retry: 0\n\n", [], 0),
    "retry-leading-zeros": V(b"retry: 007\n\n", [], 7),
    "retry-big": V(b"retry: 123456789012\n\n", [], 123456789012),
    "retry-with-data": V(b"retry: 100\ndata: a\n\n", [msg("a")], 100),
    "retry-last-valid-wins": V(b"retry: 100\nretry: 200\n\n", [], 200),
    "retry-invalid-keeps-previous": V(b"retry: 100\n\nretry: x\n\nretry: 1e3\n\n", [], 100),
    "retry-letters": V(b"retry: 15a\n\n", [], None),
    "retry-negative": V(b"retry: -1\n\n", [], None),
    "retry-plus": V(b"retry: +1\n\n", [], None),
    "retry-decimal": V(b"retry: 1.5\n\n", [], None),
    "retry-two-spaces": V(b"retry:  15\n\n", [], None),
    "retry-trailing-space": V(b"retry: 15 \n\n", [], None),
    "retry-empty": V(b"retry:\n\n", [], None),
    "retry-without-colon": V(b"retry\n\n", [], None),
    "retry-non-ascii-digits": V("retry: ١٢\n\nretry: １２\n\n".encode(), [], None),
    "retry-nul": V(b"retry: 1\x00\n\n", [], None),
    "retry-block-with-nul-id": V(b"retry: 5\nid: \x00\ndata: a\n\n", [msg("a")], 5),
    # retry is applied when its line ends, even if the event is never finished.
    "retry-in-unfinished-block": V(b"data: a\n\nretry: 300\n", [msg("a")], 300),
    "retry-before-unfinished-data": V(b"retry: 300\ndata: b\n", [], 300),
    "retry-ended-by-final-cr": V(b"retry: 300\r", [], 300),
    "retry-unfinished-line-ignored": V(b"retry: 300", [], None),
    # End of stream: a half-received event is discarded.
    "half-event-no-blank-line": V(b"data: a\n\ndata: b\n", [msg("a")]),
    "half-event-no-line-end": V(b"data: a\n\ndata: b", [msg("a")]),
    "half-event-crlf": V(b"data: a\r\n\r\ndata: b\r\n", [msg("a")]),
    "half-event-with-id-and-event": V(b"data: a\n\nevent: x\nid: 3\ndata: b\n", [msg("a")]),
    # WHATWG examples.
    "whatwg-stock": V(b"data: YHOO\ndata: +2\ndata: 10\n\n", [msg("YHOO\n+2\n10")]),
    "whatwg-test-stream": V(
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
        [msg("first event", "1"), msg("second event"), msg(" third event")],
    ),
    "whatwg-empty-data": V(b"data\n\ndata\ndata\n\ndata:", [msg(""), msg("\n")]),
    "whatwg-space": V(b"data:test\n\ndata: test\n\n", [msg("test"), msg("test")]),
    "whatwg-event-types": V(
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
        [msg("73857293", event="add"), msg("2153", event="remove"), msg("113411", event="add")],
    ),
}

RICH_STREAM = (
    b"\xef\xbb\xbf: hi\r\nretry: 10\nid: 1\r\n\r\nevent: e\rdata: a\xc3\xa9\r\ndata\n"
    b"id: \x00\n\ndata: \xe2\x98\x83\r\rid\n\r\ndata:x\n\ndata: tail\r"
)
RICH_EVENTS = [msg("a\u00e9\n", "1", "e"), msg("\u2603", "1"), msg("x")]


@pytest.mark.parametrize("vector", list(VECTORS.values()), ids=list(VECTORS))
def test_vector(vector: Vector) -> None:
    expected = Outcome(vector.events, vector.retry, vector.last_event_id)
    assert decode([vector.stream], vector.start_id) == expected


@pytest.mark.parametrize("vector", list(VECTORS.values()), ids=list(VECTORS))
def test_vector_agrees_with_reference(vector: Vector) -> None:
    expected = Outcome(vector.events, vector.retry, vector.last_event_id)
    assert reference(vector.stream, vector.start_id) == expected


@pytest.mark.parametrize("vector", list(VECTORS.values()), ids=list(VECTORS))
def test_vector_in_any_two_chunks_and_bytewise(vector: Vector) -> None:
    expected = Outcome(vector.events, vector.retry, vector.last_event_id)
    stream = vector.stream
    for point in range(len(stream) + 1):
        assert decode(cut(stream, [point]), vector.start_id) == expected, point
    bytewise = [stream[i : i + 1] for i in range(len(stream))]
    assert decode(bytewise, vector.start_id) == expected
    with_empties = [piece for byte in bytewise for piece in (b"", byte)] + [b""]
    assert decode(with_empties, vector.start_id) == expected


def test_rich_stream_reference() -> None:
    assert reference(RICH_STREAM) == Outcome(RICH_EVENTS, 10, "")


def test_event_split_across_every_boundary() -> None:
    """Every 1-, 2- and 3-way split of a stream using every rule gives the same result."""
    expected = Outcome(RICH_EVENTS, 10, "")
    assert decode([RICH_STREAM]) == expected
    n = len(RICH_STREAM)
    for i in range(n + 1):
        for j in range(i, n + 1):
            assert decode(cut(RICH_STREAM, [i, j])) == expected, (i, j)
    for i, j, k in itertools.combinations(range(0, n + 1, 3), 3):
        assert decode(cut(RICH_STREAM, [i, j, k])) == expected, (i, j, k)


@pytest.mark.parametrize("sep", [b"\n", b"\r", b"\r\n"])
def test_crlf_split_between_cr_and_lf_is_one_line_end(sep: bytes) -> None:
    stream = b"data: a" + sep + b"data: b\r"
    chunks = [stream, b"\ndata: c\r", b"\n\r", b"\n"]  # ..b\r|\n.. c\r|\n\r|\n
    assert decode(chunks).events == [msg("a\nb\nc")]


def test_many_events_one_chunk() -> None:
    stream = b"".join(b"id: %d\ndata: %d\n\n" % (n, n * n) for n in range(500))
    events = decode([stream]).events
    assert events == [msg(str(n * n), str(n)) for n in range(500)]


def test_decoder_defaults() -> None:
    decoder = SSEDecoder()
    assert decoder.last_event_id == ""
    assert decoder.retry is None
    assert decoder.max_event_bytes == DEFAULT_MAX_EVENT_BYTES == 8 * 1024 * 1024


def test_server_sent_event_is_frozen_value() -> None:
    assert ServerSentEvent() == ServerSentEvent("message", "", "")
    event = ServerSentEvent("ping", "x", "3")
    assert event == ServerSentEvent(event="ping", data="x", id="3")
    assert hash(event) == hash(ServerSentEvent("ping", "x", "3"))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.data = "y"  # type: ignore[misc]


def test_decoder_state_carries_over_iter_events_calls() -> None:
    """``last_event_id`` and ``retry`` belong to the decoder, not to one ``iter_events`` call."""
    decoder = SSEDecoder()
    assert [as_tuple(e) for e in decoder.iter_events([b"id: 4\nretry: 9\ndata: a\n\n"])] == [msg("a", "4")]
    assert [as_tuple(e) for e in decoder.iter_events([b"data: b\n\n"])] == [msg("b", "4")]
    assert decoder.retry == 9


def test_retry_seen_before_a_connection_error_is_kept() -> None:
    """A ``retry`` line that ended before the connection broke sets the reconnection time."""

    def chunks() -> Iterator[bytes]:
        yield b"data: a\n\nretry: 2500\ndata: b"
        raise ConnectionError("reset")

    decoder = SSEDecoder()
    events: list[Event] = []
    with pytest.raises(ConnectionError):
        for event in decoder.iter_events(chunks()):
            events.append(as_tuple(event))
    assert events == [msg("a")]
    assert decoder.retry == 2500


# --------------------------------------------------------------------------
# (b) Properties against the reference.
# --------------------------------------------------------------------------

NAMES = st.sampled_from(["data", "event", "id", "retry", "", "dat", "datas", "Data", " data", "x"])
SEPARATORS = st.sampled_from(["", ":", ": ", ":  "])
SPECIAL_CHARS = list(" :\x00\ufeff0123456789ab-.\t\u00e9\u2603\U0001f600\x85\u2028")
VALUES = st.one_of(
    st.text(st.sampled_from(SPECIAL_CHARS), max_size=6),
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=6),
    st.integers(0, 10**6).map(str),
    st.sampled_from(["", "ping", "message", "0", "12"]),
)


def field_lines(names: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda name, sep, value: name + sep + value if sep else name, names, SEPARATORS, VALUES)


DATA_LINES = field_lines(st.just("data"))
OTHER_LINES = field_lines(NAMES)
COMMENTS = VALUES.map(lambda value: ":" + value)
BLOCKS = st.lists(st.one_of(DATA_LINES, OTHER_LINES, COMMENTS), max_size=4)  # lines before a blank line
LINE_ENDS = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def grammar_streams(draw: st.DrawFn) -> bytes:
    """Blocks of fields and comments, each ended by a blank line, with random line ends.

    Line ends are drawn per line, so a CR ending one line and the LF ending the
    next blank line make one CRLF: the tricky cases come up by themselves. The
    stream may end with an unfinished block and an unfinished line.
    """
    parts = [draw(st.sampled_from(["", "", "\ufeff", "\ufeff\ufeff", "\n", "\r"]))]
    for lines in draw(st.lists(BLOCKS, max_size=6)):
        parts.extend(line + draw(LINE_ENDS) for line in [*lines, ""])
    if draw(st.booleans()):
        parts.extend(line + draw(LINE_ENDS) for line in draw(BLOCKS))
        parts.append(draw(st.one_of(st.just(""), DATA_LINES, OTHER_LINES, COMMENTS)))
    return "".join(parts).encode()


SSE_ALPHABET = st.sampled_from(list("\r\n\r\n\r\n:: \x00\ufeffdataeventidretry0123456789x\u00e9\U0001f600"))
RANDOM_UTF8 = st.one_of(
    st.text(SSE_ALPHABET, max_size=80),
    st.text(st.characters(codec="utf-8"), max_size=80),
).map(lambda text: text.encode("utf-8"))
STREAMS = st.one_of(grammar_streams(), RANDOM_UTF8)
START_IDS = st.sampled_from(["", "", "41", "\u00e9"])


@st.composite
def chunkings(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    """Cut points anywhere, but often just after a CR or LF (the tricky places)."""
    point = st.integers(0, len(stream))
    after_line_end = [i + 1 for i, byte in enumerate(stream) if byte in b"\r\n"]
    if after_line_end:
        point = st.one_of(point, st.sampled_from(after_line_end))
    return cut(stream, draw(st.lists(point, max_size=12)))


@given(stream=STREAMS, start_id=START_IDS)
@example(stream=b"data: a\n\r\ndata: b\n\n", start_id="")
@example(stream=b"retry: 5\r", start_id="")
@example(stream=b"id: 1\n\nid: \x00\n\ndata: x\n\n", start_id="")
def test_decoder_matches_reference(stream: bytes, start_id: str) -> None:
    assert decode([stream], start_id) == reference(stream, start_id)


@given(stream=STREAMS, data=st.data(), start_id=START_IDS)
def test_any_chunking_gives_the_same_result(stream: bytes, data: st.DataObject, start_id: str) -> None:
    chunks = data.draw(chunkings(stream))
    expected = reference(stream, start_id)
    assert decode(chunks, start_id) == expected
    assert decode([stream[i : i + 1] for i in range(len(stream))], start_id) == expected


def check_yielded_as_soon_as_complete(chunks: list[bytes]) -> None:
    decoder = SSEDecoder()
    got: list[Event] = []

    def source() -> Iterator[bytes]:
        seen = b""
        for chunk in chunks:
            yield chunk
            seen += chunk
            so_far = reference(seen, lenient=True)
            assert got == so_far.events, seen
            assert decoder.last_event_id == so_far.last_event_id, seen

    for event in decoder.iter_events(source()):
        got.append(as_tuple(event))
    assert got == reference(b"".join(chunks)).events


@given(stream=STREAMS, data=st.data())
def test_events_are_yielded_as_soon_as_complete(stream: bytes, data: st.DataObject) -> None:
    """When the decoder pulls the next chunk, every event complete so far has been yielded."""
    check_yielded_as_soon_as_complete(data.draw(chunkings(stream)))
    check_yielded_as_soon_as_complete([stream[i : i + 1] for i in range(len(stream))])


@pytest.mark.parametrize(
    "chunks",
    [
        [b"data: a\r\r"],
        [b"data: a\n\r", b"\ndata: b\n\n"],
        [b"data: a\r", b"\r", b"", b"\n", b"data: b\r\n\r", b"\n"],
        [b"id: 3\r\r", b"data: c\r\r"],
        [b"\xef\xbb", b"\xbfdata: a\r\r", b"\r"],
    ],
)
def test_events_are_yielded_as_soon_as_complete_examples(chunks: list[bytes]) -> None:
    check_yielded_as_soon_as_complete(chunks)


# --------------------------------------------------------------------------
# (d) Events come out as soon as their blank line arrives.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("end", [b"\n", b"\r", b"\r\n"], ids=["lf", "cr", "crlf"])
def test_event_yielded_before_next_chunk_is_pulled(end: bytes) -> None:
    chunks = [
        b"data: a" + end,
        end,  # blank line: "a" is complete
        b"data: b" + end + end,  # "b" is complete
        b"data: c" + end + end + b"data: d" + end + end,  # "c" and "d" are complete
        b": tail" + end,
    ]
    pulled: list[int] = []

    def source() -> Iterator[bytes]:
        for index, chunk in enumerate(chunks):
            pulled.append(index)
            yield chunk

    events = SSEDecoder().iter_events(source())
    assert next(events).data == "a"
    assert pulled == [0, 1]
    assert next(events).data == "b"
    assert pulled == [0, 1, 2]
    assert next(events).data == "c"
    assert next(events).data == "d"
    assert pulled == [0, 1, 2, 3]
    assert next(events, None) is None
    assert pulled == [0, 1, 2, 3, 4]


def test_event_yielded_while_source_would_block() -> None:
    """A source that never ends after the blank line still lets the event out."""

    def source() -> Iterator[bytes]:
        yield b"data: live\r\r"
        raise AssertionError("the decoder pulled a chunk it did not need")

    assert next(SSEDecoder().iter_events(source())) == ServerSentEvent("message", "live", "")


# --------------------------------------------------------------------------
# (c) The cap and UTF-8.
# --------------------------------------------------------------------------


def test_block_over_cap_raises() -> None:
    stream = b"data: " + b"x" * 11 + b"\n\n"  # block is 17 bytes
    with pytest.raises(ProtocolError, match="16-byte cap"):
        decode([stream], max_event_bytes=16)


def test_block_at_cap_is_accepted_in_any_split() -> None:
    stream = b"data: " + b"x" * 10 + b"\r\n\r\n"  # block is 16 bytes (line ends do not count)
    for point in range(len(stream) + 1):
        assert decode(cut(stream, [point]), max_event_bytes=16).events == [msg("x" * 10)], point
    assert decode([stream[i : i + 1] for i in range(len(stream))], max_event_bytes=16).events == [msg("x" * 10)]


def test_cap_is_per_block_not_per_stream() -> None:
    stream = b"data: abcdefghij\n\n" * 100
    assert len(decode([stream], max_event_bytes=16).events) == 100


@pytest.mark.parametrize(
    "start",
    [b"data: ", b"", b": comment ", b"id: ", b"data: a\n\ndata: "],
    ids=["data", "field-name", "comment", "id", "after-an-event"],
)
def test_never_ending_line_raises(start: bytes) -> None:
    chunks = itertools.chain([start], itertools.repeat(b"x" * 7))
    with pytest.raises(ProtocolError, match="64-byte cap"):
        decode(chunks, max_event_bytes=64)


@pytest.mark.parametrize("line", [b"data: x\n", b": ping\r\n", b"id: 1\r"])
def test_never_ending_block_raises(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode(itertools.repeat(line), max_event_bytes=64)


def test_never_ending_line_bytewise_raises() -> None:
    with pytest.raises(ProtocolError):
        decode(itertools.repeat(b"y"), max_event_bytes=32)


def test_events_before_an_oversized_block_are_delivered() -> None:
    events: list[Event] = []
    stream = b"data: a\n\nid: 2\n\ndata: b\n\n" + b"data: " + b"z" * 100
    with pytest.raises(ProtocolError):
        for event in SSEDecoder(32).iter_events([stream]):
            events.append(as_tuple(event))
    assert events == [msg("a"), msg("b", "2")]


def test_default_cap_allows_large_events() -> None:
    data = "x" * (1024 * 1024)
    stream = ("data: " + data + "\n\n").encode()
    chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    assert decode(chunks).events == [msg(data)]


@given(stream=grammar_streams(), data=st.data(), cap=st.integers(1, 40))
def test_cap_outcome_does_not_depend_on_chunking(stream: bytes, data: st.DataObject, cap: int) -> None:
    whole = decode_until_error([stream], cap)
    assert decode_until_error(data.draw(chunkings(stream)), cap) == whole
    assert decode_until_error([stream[i : i + 1] for i in range(len(stream))], cap) == whole
    if not whole[1]:
        assert whole[0] == reference(stream).events


@pytest.mark.parametrize(
    "stream",
    [
        b"data: \xff\n\n",
        b"data: a\xc3\n\n",  # truncated sequence
        b"data: \xc0\xaf\n\n",  # overlong
        b"data: \xed\xa0\x80\n\n",  # surrogate
        b"data: \xf4\x90\x80\x80\n\n",  # above U+10FFFF
        b"data: ok\ndata: \x80\n\n",
        b"data\xff: x\ndata: y\n\n",
    ],
)
def test_invalid_utf8_raises(stream: bytes) -> None:
    with pytest.raises(ProtocolError, match="UTF-8"):
        decode([stream])


def test_invalid_utf8_error_names_last_event_id() -> None:
    events: list[Event] = []
    with pytest.raises(ProtocolError) as info:
        for event in SSEDecoder().iter_events([b"id: 5\ndata: a\n\n", b"data: \xfe\n\n"]):
            events.append(as_tuple(event))
    assert events == [msg("a", "5")]
    assert info.value.event_id == "5"


def test_multibyte_character_split_across_chunks() -> None:
    stream = "id: \u2603\ndata: \U0001f600\u00e9\n\n".encode()
    expected = [msg("\U0001f600\u00e9", "\u2603")]
    for points in itertools.combinations(range(len(stream) + 1), 2):
        assert decode(cut(stream, points)).events == expected, points


def test_chunks_may_be_any_sequence_of_bytes() -> None:
    chunks: Sequence[bytes] = (b"data: a\n", b"\n")
    assert decode(iter(chunks)).events == [msg("a")]
    assert decode([bytes(bytearray(b"data: b\n\n"))]).events == [msg("b")]


def test_a_comment_inside_an_event_is_ignored_even_when_it_is_not_utf8() -> None:
    stream = b"id: 1\n: caf\xe9 \xff comment\ndata: ok\n\n:\xff\n\nid: 2\ndata: next\n\n"
    for size in (1, 3, len(stream)):
        decoder = SSEDecoder()
        events = list(decoder.iter_events(stream[i : i + size] for i in range(0, len(stream), size)))
        assert [(e.id, e.data) for e in events] == [("1", "ok"), ("2", "next")]
