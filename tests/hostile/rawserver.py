"""A tiny threaded raw-socket HTTP server for hostile-input tests (no HTTP framework, no mocks).

Each test gives a handler ``handler(conn, request)``: ``conn`` is the accepted
socket, ``request`` the parsed request line and headers. The handler writes
whatever bytes it likes, well-formed or not. Helpers build the usual pieces.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import Callable, Optional

import attrs


@attrs.frozen
class Request:
    method: str
    path: str
    headers: dict[str, str]
    index: int  # 0 for the first request this server saw, 1 for the next...


Handler = Callable[[socket.socket, Request], None]


def head(
    status: int = 200,
    content_type: Optional[str] = "text/event-stream",
    *,
    chunked: bool = False,
    close: bool = True,
    extra: Optional[dict[str, str]] = None,
    length: Optional[int] = None,
) -> bytes:
    """A response head; ``close`` adds ``Connection: close`` (the body then ends with the connection)."""
    lines = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    for name, value in (extra or {}).items():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(event_id: object, data: str, name: Optional[str] = "update") -> bytes:
    """One SSE block (``id``, optional ``event``, ``data``)."""
    text = f"id: {event_id}\n" + (f"event: {name}\n" if name else "") + f"data: {data}\n\n"
    return text.encode("utf-8")


def update(event_id: int, status: int = 7, task_id: str = "tsk_hostile", **fields: object) -> bytes:
    """A valid TaskUpdate event (status 10 is terminal)."""
    import json

    body = {"task_id": task_id, "status": status, "progress": None, "logs": [f"line {event_id}"], **fields}
    return event(event_id, json.dumps(body, separators=(",", ":"), ensure_ascii=False))


def problem(status: int, extra: Optional[dict[str, str]] = None) -> bytes:
    body = b'{"type":"about:blank","title":"Error","status":%d,"detail":"try later"}' % status
    return head(status, "application/problem+json", length=len(body), extra=extra) + body


def hold(conn: socket.socket, limit: float = 30.0) -> None:
    """Keep the connection open, sending nothing, until the peer goes (or ``limit`` seconds)."""
    conn.settimeout(limit)
    with suppress(OSError):
        while conn.recv(65536):
            pass


def drain_quietly(conn: socket.socket, data_source: Iterator[bytes]) -> int:
    """Send every piece until the peer goes; returns the bytes sent."""
    sent = 0
    with suppress(OSError):
        for piece in data_source:
            conn.sendall(piece)
            sent += len(piece)
    return sent


class RawServer:
    """``with RawServer(handler) as server:`` serves ``handler`` on 127.0.0.1 at ``server.url``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._acceptor = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RawServer:
        self._acceptor.start()
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self._stopping = True
        with suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._acceptor.join(5)
        for thread in list(self._threads):
            thread.join(5)

    def _accept(self) -> None:
        while not self._stopping:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), name="hostile-conn", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = self._read_request(conn)
                if request is not None:
                    self.handler(conn, request)
            except OSError:
                pass  # the client went away: that is its right
            except BaseException as exc:  # a handler bug must fail the test, not vanish
                self.errors.append(exc)

    def _read_request(self, conn: socket.socket) -> Optional[Request]:
        data = b""
        while b"\r\n\r\n" not in data:
            part = conn.recv(65536)
            if not part:
                return None
            data += part
        head_bytes, _, body = data.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        while len(body) < length:
            part = conn.recv(65536)
            if not part:
                break
            body += part
        with self._lock:
            request = Request(method, path, headers, len(self.requests))
            self.requests.append(request)
        return request


@contextmanager
def serving(handler: Handler) -> Iterator[RawServer]:
    with RawServer(handler) as server:
        yield server
    if server.errors:
        raise server.errors[0]
