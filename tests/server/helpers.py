"""Test helpers for the local server: a tiny strict SSE parser and raw readers.

No SDK code here on purpose: the server is checked against PROTOCOL.md with
plain ``requests`` and raw sockets only.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import requests

UPDATE_KEYS = {"task_id", "status", "progress", "logs", "partial_output", "output", "error", "timestamp"}
TASK_KEYS = {
    "id",
    "app",
    "status",
    "input",
    "output",
    "error",
    "logs",
    "progress",
    "created_at",
    "updated_at",
}
TERMINAL_CODES = {10, 11, 12}
TERMINAL = TERMINAL_CODES | {"completed", "failed", "cancelled"}


@dataclass
class Item:
    """One parsed SSE block: kind is 'retry', 'comment' or 'event'."""

    kind: str
    at: float
    retry: Optional[int] = None
    comment: Optional[str] = None
    id: Optional[int] = None
    event: Optional[str] = None
    data: Optional[str] = None

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


class StrictSSEParser:
    """Parses what this server sends, and fails on anything else.

    Lines end with LF; a block is either ``retry: <digits>``, one comment
    line, or ``id`` + ``event`` + ``data`` (exactly one of each, in that order).
    """

    def __init__(self) -> None:
        self.buffer = b""
        self.items: list[Item] = []

    def feed(self, data: bytes, at: Optional[float] = None) -> list[Item]:
        at = time.monotonic() if at is None else at
        self.buffer += data
        new: list[Item] = []
        while b"\n\n" in self.buffer:
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            assert b"\r" not in block, block
            lines = block.decode("utf-8").split("\n")
            new.append(self._block(lines, at))
        self.items.extend(new)
        return new

    @staticmethod
    def _block(lines: list[str], at: float) -> Item:
        if len(lines) == 1 and lines[0].startswith(":"):
            return Item("comment", at, comment=lines[0][1:].strip())
        if len(lines) == 1 and lines[0].startswith("retry: "):
            value = lines[0][len("retry: ") :]
            assert value.isdigit(), lines
            return Item("retry", at, retry=int(value))
        assert len(lines) == 3, lines
        assert lines[0].startswith("id: ") and lines[0][4:].isdigit(), lines
        assert lines[1].startswith("event: "), lines
        assert lines[2].startswith("data: "), lines
        return Item("event", at, id=int(lines[0][4:]), event=lines[1][7:], data=lines[2][6:])

    @property
    def events(self) -> list[Item]:
        return [item for item in self.items if item.kind == "event"]


@dataclass
class StreamResult:
    status: int
    headers: dict[str, str]
    items: list[Item] = field(default_factory=list)
    rest: bytes = b""  # bytes after the last complete block
    body: bytes = b""
    error: Optional[BaseException] = None
    started: float = 0.0

    @property
    def events(self) -> list[Item]:
        return [item for item in self.items if item.kind == "event"]

    @property
    def ids(self) -> list[int]:
        return [item.id for item in self.events if item.id is not None]

    @property
    def updates(self) -> list[dict[str, Any]]:
        return [item.json() for item in self.events]


def read_stream(
    base: str,
    task_id: str,
    last_event_id: Optional[str] = None,
    *,
    max_events: Optional[int] = None,
    timeout: float = 10.0,
    session: Optional[requests.Session] = None,
    headers: Optional[dict[str, str]] = None,
) -> StreamResult:
    """GET the task stream and parse it until it ends (or ``max_events`` came)."""
    sender = session or requests
    hdrs = {"Accept": "text/event-stream", **(headers or {})}
    if last_event_id is not None:
        hdrs["Last-Event-ID"] = last_event_id
    started = time.monotonic()
    response = sender.get(f"{base}/tasks/{task_id}/stream", headers=hdrs, stream=True, timeout=timeout)
    result = StreamResult(response.status_code, dict(response.headers), started=started)
    parser = StrictSSEParser()
    try:
        if response.status_code != 200:
            result.body = response.content
            return result
        for chunk in response.iter_content(chunk_size=None):
            result.body += chunk
            parser.feed(chunk)
            if max_events is not None and len(parser.events) >= max_events:
                break
    except (requests.RequestException, OSError) as exc:
        result.error = exc
    finally:
        response.close()
        result.items = parser.items
        result.rest = parser.buffer
    return result


def run(base: str, app: str, data: dict[str, Any], **headers: str) -> dict[str, Any]:
    """POST /apps/run and return the task (asserting 200)."""
    answer = requests.post(f"{base}/apps/run", json={"app": app, "input": data}, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"data"}
    task: dict[str, Any] = body["data"]
    assert set(task) == TASK_KEYS
    return task


def wait_terminal(base: str, task_id: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task: dict[str, Any] = requests.get(f"{base}/tasks/{task_id}", timeout=5).json()["data"]
        if task["status"] in TERMINAL or time.monotonic() > deadline:
            return task
        time.sleep(0.01)


def assert_problem(answer: requests.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    assert set(body) == {"type", "title", "status", "detail"}
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@dataclass
class RawResult:
    """What a raw socket read of one HTTP/1.1 response saw."""

    head: bytes
    chunks: list[bytes]
    complete: bool  # the terminating 0-size chunk was seen
    torn: bool  # a chunk was cut short before EOF
    error: Optional[BaseException]
    eof: bool
    raw: bytes

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


def raw_get(base: str, path: str, headers: Optional[dict[str, str]] = None, timeout: float = 10.0) -> RawResult:
    """Send one GET over a fresh socket and read until EOF, error or a full response."""
    host, port = base.rsplit("//", 1)[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    raw = b""
    error: Optional[BaseException] = None
    eof = False
    try:
        while True:
            try:
                data = sock.recv(65536)
            except OSError as exc:
                error = exc
                break
            if not data:
                eof = True
                break
            raw += data
            if raw.endswith(b"\r\n0\r\n\r\n") or raw.endswith(b"\r\n\r\n0\r\n\r\n"):
                break
    finally:
        sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    chunks, complete, torn = _dechunk(body)
    return RawResult(head, chunks, complete, torn, error, eof, raw)


def _dechunk(body: bytes) -> tuple[list[bytes], bool, bool]:
    chunks: list[bytes] = []
    while body:
        size_line, sep, rest = body.partition(b"\r\n")
        if not sep:
            return chunks, False, True
        size = int(size_line, 16)
        if size == 0:
            return chunks, True, False
        if len(rest) < size + 2:
            chunks.append(rest[:size])
            return chunks, False, True
        chunks.append(rest[:size])
        assert rest[size : size + 2] == b"\r\n"
        body = rest[size + 2 :]
    return chunks, False, False
