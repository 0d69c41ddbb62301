"""Hostile servers: every bad answer ends in a typed error from API.md, promptly, in bounded memory.

Each case is served by a raw-socket server (``rawserver.py``) that writes the
bytes by hand. The assertions: the exception is the documented
``inferencesh`` type (never one from inside requests, urllib3, sseclient or
json), the call does not hang (pytest-timeout, and the SDK's own
``timeout=`` where a server could stall), and memory stays bounded.
"""

from __future__ import annotations

import email.utils
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import psutil
import pytest

from inferencesh import (
    APIError,
    Cancelled,
    CancelToken,
    Client,
    ConnectionLost,
    InferenceError,
    ProtocolError,
    RateLimitError,
    StreamTimeout,
    inference,
)
from inferencesh._sse import DEFAULT_MAX_EVENT_BYTES

from .rawserver import Request, chunk, event, head, hold, problem, serving, update

pytestmark = pytest.mark.timeout(60)

TASK = "tsk_hostile"
HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    b"<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n" + b"<!-- padding -->\r\n" * 200
)


def make_client(url: str, **settings: Any) -> Client:
    options: dict[str, Any] = {
        "heartbeat_interval": 1.0,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "max_retries": 1,
        "max_reconnects": 2,
        "max_retry_delay": 0.5,
    }
    options.update(settings)
    return inference(api_key="inf_hostile", base_url=url, **options)


def raised(action: Callable[[], Any]) -> BaseException:
    """Run ``action``; return what it raised, after checking it is one of the SDK's own errors."""
    try:
        action()
    except BaseException as exc:
        assert isinstance(exc, InferenceError), f"an untyped {type(exc).__module__}.{type(exc).__name__}: {exc}"
        return exc
    raise AssertionError("no error was raised")


def drain(client: Client, timeout: float = 20.0, **kwargs: Any) -> list[int]:
    """Iterate the task stream to its end; the event ids delivered."""
    return [update.event_id for update in client.tasks.stream(TASK, timeout=timeout, **kwargs)]


def stream_answer(*blocks: bytes, then: str = "hold") -> Callable[[socket.socket, Request], None]:
    """A handler answering every stream request with ``blocks`` (close-delimited), then holding or closing."""

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head() + b"".join(blocks))
        if then == "hold":
            hold(conn)

    return handler


# -- event data ------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    ["{not json", "", "{'single': 'quotes'}", '{"task_id": "t", "status": 7', "NaNx", '{"a":1} trailing'],
    ids=["broken", "empty", "single-quotes", "unterminated", "garbage", "trailing-garbage"],
)
def test_event_data_that_is_not_json(data: str) -> None:
    with serving(stream_answer(event(1, data))) as server, make_client(server.url) as client:
        error = raised(lambda: drain(client))
        assert isinstance(error, ProtocolError)
        assert error.event_id == "1"
        assert len(server.requests) == 1  # a ProtocolError is not resumed


@pytest.mark.parametrize("data", ["[1, 2]", '"running"', "42", "null", "true", '{"status": 7}', '{"task_id": 5}'])
def test_json_that_is_not_an_update_object(data: str) -> None:
    with serving(stream_answer(event(1, data))) as server, make_client(server.url) as client:
        assert isinstance(raised(lambda: drain(client)), ProtocolError)


@pytest.mark.parametrize(
    "block",
    [
        b'id: 1\nevent: update\ndata: {"task_id": "\xff\xfe", "status": 7}\n\n',
        b"id: 1\nevent: upd\xc3\n" + b'data: {"task_id": "t", "status": 7}\n\n',
        b"id: \xe2\x82\n\n",
        b'id: 1\nevent: update\ndata: {"task_id": "t", "status": 7, "logs": ["\xed\xa0\x80"]}\n\n',
    ],
    ids=["data", "event-name", "id-only-block", "surrogate"],
)
def test_invalid_utf8(block: bytes) -> None:
    with serving(stream_answer(block)) as server, make_client(server.url) as client:
        assert isinstance(raised(lambda: drain(client)), ProtocolError)


def test_valid_utf8_split_across_writes_is_fine() -> None:
    body = update(1, logs=["café ☕"]) + update(2, status=10)
    cut = body.index("☕".encode()) + 1  # inside the three bytes of the cup

    def handler(conn: socket.socket, request: Request) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(head() + body[:cut])
        time.sleep(0.05)
        conn.sendall(body[cut:])
        hold(conn)

    with serving(handler) as server, make_client(server.url) as client:
        stream = client.tasks.stream(TASK, timeout=20)
        assert [u.event_id for u in stream] == [1, 2]
        assert stream.logs[0] == "café ☕"


# -- size caps -------------------------------------------------------------------


def _rss() -> int:
    return int(psutil.Process(os.getpid()).memory_info().rss)


def test_a_10_mb_line_hits_the_documented_cap() -> None:
    line = b"id: 1\nevent: update\ndata: {" + b'"x": "' + b"a" * (10 * 1024 * 1024) + b'"}\n\n'
    with serving(stream_answer(line)) as server, make_client(server.url) as client:
        before = _rss()
        error = raised(lambda: drain(client))
        assert isinstance(error, ProtocolError)
        assert str(DEFAULT_MAX_EVENT_BYTES) in str(error)
        assert _rss() - before < 200 * 1024 * 1024


def _forever(piece: bytes) -> Iterator[bytes]:
    while True:
        yield piece


@pytest.mark.parametrize(
    "prefix,piece",
    [
        (b"id: 1\nevent: update\ndata: ", b"a" * 65536),  # one data line that never ends
        (b"", b"data: more\n" * 4096),  # data lines forever, never a blank line
        (b"", b": padding comment\n" * 4096),  # comments forever, never a blank line
        (b"", b"\r" * 1 + b"x" * 65535),  # CR-separated junk lines forever
    ],
    ids=["endless-line", "endless-data-lines", "endless-comments", "endless-cr-lines"],
)
def test_bytes_forever_without_an_event_end_at_the_cap(prefix: bytes, piece: bytes) -> None:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head() + prefix)
        for data in _forever(piece):
            conn.sendall(data)

    cap = 1024 * 1024
    with serving(handler) as server, make_client(server.url, max_event_bytes=cap) as client:
        before = _rss()
        error = raised(lambda: drain(client))
        assert isinstance(error, ProtocolError)
        assert _rss() - before < 64 * 1024 * 1024


def test_heartbeats_forever_without_an_event_end_at_the_deadline() -> None:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head())
        while True:
            conn.sendall(b": ping\n\n")
            time.sleep(0.01)

    with serving(handler) as server, make_client(server.url) as client:
        started = time.monotonic()
        error = raised(lambda: drain(client, timeout=0.5))
        assert isinstance(error, StreamTimeout)
        assert time.monotonic() - started < 10


# -- non-SSE answers -------------------------------------------------------------


def _html_502(conn: socket.socket, request: Request) -> None:
    conn.sendall(head(502, "text/html", length=len(HTML_502)) + HTML_502)


def test_an_html_502_where_json_was_expected() -> None:
    with serving(_html_502) as server, make_client(server.url) as client:
        error = raised(lambda: client.run({"app": "infsh/echo", "input": {}}))
        assert isinstance(error, APIError)
        assert error.status_code == 502
        assert "502 Bad Gateway" in error.detail
        assert "<" not in error.detail and len(error.detail) <= 200
        assert len(server.requests) == 2  # 5xx is retried (max_retries=1), then reported

        error = raised(lambda: client.tasks.get(TASK))
        assert isinstance(error, APIError) and error.status_code == 502


def test_an_html_502_on_the_stream_ends_as_connection_lost() -> None:
    with serving(_html_502) as server, make_client(server.url) as client:
        error = raised(lambda: drain(client))
        assert isinstance(error, ConnectionLost)
        assert "502" in str(error)
        assert len(server.requests) == 3  # the first attempt and max_reconnects=2 more


def test_an_html_200_where_json_was_expected() -> None:
    page = b"<html><body>Please log in to the Wi-Fi</body></html>"

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head(200, "text/html", length=len(page)) + page)

    with serving(handler) as server, make_client(server.url) as client:
        error = raised(lambda: client.tasks.get(TASK))
        assert isinstance(error, ProtocolError)
        assert "Wi-Fi" in str(error)


@pytest.mark.parametrize("content_type", ["application/json", "text/html; charset=utf-8", None, "text/plain"])
def test_a_200_stream_with_the_wrong_content_type(content_type: Any) -> None:
    body = update(1) + update(2, status=10)

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head(200, content_type) + body)

    with serving(handler) as server, make_client(server.url) as client:
        assert isinstance(raised(lambda: drain(client)), ProtocolError)
        assert len(server.requests) == 1


# -- hostile delays ----------------------------------------------------------------


def _drop_then_finish(first: bytes, later: Callable[[socket.socket, Request], None]) -> Any:
    """First stream request: ``first`` then a clean close (a drop); later ones go to ``later``."""

    def handler(conn: socket.socket, request: Request) -> None:
        if request.index == 0:
            conn.sendall(head() + first)
        else:
            later(conn, request)

    return handler


def _finish(conn: socket.socket, request: Request) -> None:
    assert request.headers.get("last-event-id") == "2"
    conn.sendall(head() + update(3, status=10))


@pytest.mark.parametrize("retry", ["1000000000000", "9" * 400, "9" * 5000])
def test_a_huge_retry_is_capped_by_max_retry_delay(retry: str) -> None:
    first = f"retry: {retry}\n\n".encode() + update(1) + update(2)
    with serving(_drop_then_finish(first, _finish)) as server, make_client(server.url) as client:
        started = time.monotonic()
        assert drain(client) == [1, 2, 3]
        assert time.monotonic() - started < 15  # capped at max_retry_delay = 0.5 s, not 10^12 ms


def _status_then_finish(extra: dict[str, str], code: int = 503) -> Callable[[socket.socket, Request], None]:
    def later(conn: socket.socket, request: Request) -> None:
        if request.index == 1:
            conn.sendall(problem(code, extra))
        else:
            _finish(conn, request)

    return later


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def test_retry_after_as_an_http_date_is_honoured_on_a_reconnect() -> None:
    later = _status_then_finish({"Retry-After": _http_date(2)})
    with serving(_drop_then_finish(update(1) + update(2), later)) as server:
        with make_client(server.url, max_retry_delay=10) as client:
            times: list[float] = []
            for _ in client.tasks.stream(TASK, timeout=30):
                times.append(time.monotonic())
        assert len(times) == 3
        assert times[2] - times[1] > 0.5  # waited for the date (1-2 s away), not the 10-50 ms backoff


@pytest.mark.parametrize(
    "value", ["soon", "", "-5", "1e9", "Mon, 99 Foo 2024 99:99:99 GMT", "Tue, 01 Jan 1980 00:00:00 GMT", "9" * 5000]
)
def test_garbage_or_past_retry_after_on_a_reconnect_is_ignored(value: str) -> None:
    later = _status_then_finish({"Retry-After": value}, code=429)
    with serving(_drop_then_finish(update(1) + update(2), later)) as server, make_client(server.url) as client:
        assert drain(client) == [1, 2, 3]


def test_a_huge_retry_after_is_capped() -> None:
    later = _status_then_finish({"Retry-After": "1000000000000"})
    with serving(_drop_then_finish(update(1) + update(2), later)) as server, make_client(server.url) as client:
        started = time.monotonic()
        assert drain(client) == [1, 2, 3]
        assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    "value,expected",
    [
        (_http_date(-60), 0.0),
        ("garbage", None),
        ("Mon, 99 Foo 2024 99:99:99 GMT", None),
        ("1000000000000", 0.5),
        ("2", 0.5),
    ],
)
def test_retry_after_on_a_429_answer_to_a_run(value: str, expected: Any) -> None:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(problem(429, {"Retry-After": value}))

    with serving(handler) as server, make_client(server.url, max_retries=0) as client:
        error = raised(lambda: client.run({"app": "infsh/echo", "input": {}}))
        assert isinstance(error, RateLimitError)
        assert error.retry_after == expected


# -- event ids -------------------------------------------------------------------


@pytest.mark.parametrize(
    "event_id",
    ["-1", "abc", "1.5", "", "+3", " 7x", "0x10", "١٢", "1e3", "9" * 5000],
    ids=["negative", "letters", "decimal", "empty", "plus", "junk", "hex", "arabic-digits", "exponent", "5000-digits"],
)
def test_negative_or_non_numeric_event_ids(event_id: str) -> None:
    block = f'id: {event_id}\nevent: update\ndata: {{"task_id": "{TASK}", "status": 7}}\n\n'.encode()
    with serving(stream_answer(block)) as server, make_client(server.url) as client:
        error = raised(lambda: drain(client))
        assert isinstance(error, ProtocolError)
        assert len(server.requests) == 1


def test_an_event_without_an_id() -> None:
    block = f'event: update\ndata: {{"task_id": "{TASK}", "status": 7}}\n\n'.encode()
    with serving(stream_answer(block)) as server, make_client(server.url) as client:
        assert isinstance(raised(lambda: drain(client)), ProtocolError)


# -- a stalled server that says Connection: close ---------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["close-delimited", "chunked"])
def test_deadline_and_cancel_wake_a_read_on_a_connection_close_answer(chunked: bool) -> None:
    """http.client hands the socket to the response on ``Connection: close``; aborts must still reach it."""
    first = update(1)

    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head(chunked=chunked, close=True) + (chunk(first) if chunked else first))
        hold(conn)

    with serving(handler) as server, make_client(server.url, heartbeat_interval=60) as client:
        started = time.monotonic()
        error = raised(lambda: drain(client, timeout=0.5))
        assert isinstance(error, StreamTimeout)
        assert time.monotonic() - started < 5  # not the 120 s idle timeout

        token = CancelToken()
        stream = client.tasks.stream(TASK, cancel=token)
        assert next(stream).event_id == 1
        threading.Timer(0.2, token.cancel).start()
        started = time.monotonic()
        assert isinstance(raised(lambda: next(stream)), Cancelled)
        assert time.monotonic() - started < 5

        stream = client.tasks.stream(TASK)
        assert next(stream).event_id == 1
        threading.Timer(0.2, stream.close).start()
        started = time.monotonic()
        assert list(stream) == []  # close() from another thread ends the loop quietly
        assert time.monotonic() - started < 5


# -- broken HTTP framing ---------------------------------------------------------


@pytest.mark.parametrize(
    "framing",
    [b"zz\r\n", b"-5\r\n", b"f" * 100 + b"\r\n", b"7" * 10000],
    ids=["garbage-size", "negative-size", "huge-size-line", "endless-size-line"],
)
def test_broken_chunk_framing_is_a_drop_then_connection_lost(framing: bytes) -> None:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head(chunked=True) + chunk(update(1)) + framing)
        if framing.startswith(b"7"):
            for piece in _forever(b"7" * 65536):  # the size line never ends
                conn.sendall(piece)
        hold(conn, limit=5)

    # A negative or enormous size makes http.client read on as if in the chunk: the idle limit ends it.
    with serving(handler) as server, make_client(server.url, heartbeat_interval=0.25) as client:
        before = _rss()
        error = raised(lambda: drain(client))
        assert isinstance(error, ConnectionLost)
        assert error.last_event_id == 1  # event 1 was delivered once, and resumed from
        assert _rss() - before < 64 * 1024 * 1024


def test_a_chunk_that_never_ends_hits_the_event_cap() -> None:
    def handler(conn: socket.socket, request: Request) -> None:
        conn.sendall(head(chunked=True) + b"%x\r\n" % (10 * 2**30) + b"data: ")
        for piece in _forever(b"a" * 65536):
            conn.sendall(piece)

    with serving(handler) as server, make_client(server.url, max_event_bytes=2**20) as client:
        before = _rss()
        assert isinstance(raised(lambda: drain(client)), ProtocolError)
        assert _rss() - before < 64 * 1024 * 1024
