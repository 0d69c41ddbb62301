"""Helpers for relay tests: a raw HTTP client and an SSE reader that timestamps what arrives."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlsplit

SECRET = "inf_relay_s3cr3t_never_in_a_browser_7f3a"
MOUNT = "/api/inference"


# -- a raw HTTP/SSE client that timestamps what arrives ------------------------


@dataclass
class Answer:
    """One HTTP answer: status, headers (lowercased names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(method: str, url: str, body: Optional[bytes] = None, headers: Optional[dict[str, str]] = None) -> Answer:
    """One request over a fresh connection; the whole answer."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        target = parts.path + ("?" + parts.query if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def post_json(url: str, payload: Any, headers: Optional[dict[str, str]] = None) -> Answer:
    body = json.dumps(payload).encode()
    return request("POST", url, body, {"Content-Type": "application/json", **(headers or {})})


@dataclass
class Block:
    """One SSE block as it arrived: ``at`` (monotonic seconds), its fields and comment lines."""

    at: float
    fields: list[tuple[str, str]]
    comments: list[str]

    @property
    def id(self) -> Optional[int]:
        values = [v for k, v in self.fields if k == "id"]
        return int(values[-1]) if values else None

    @property
    def data(self) -> Any:
        lines = [v for k, v in self.fields if k == "data"]
        return json.loads("\n".join(lines)) if lines else None

    @property
    def is_event(self) -> bool:
        return any(k == "data" for k, _ in self.fields)


@dataclass
class SSEReader:
    """Reads a ``text/event-stream`` answer on its own thread, timestamping each block."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    status: Optional[int] = None
    response_headers: dict[str, str] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)
    error: Optional[BaseException] = None
    done: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        self._conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
        self._target = parts.path + ("?" + parts.query if parts.query else "")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._sock: Optional[socket.socket] = None

    def start(self) -> SSEReader:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._conn.request("GET", self._target, headers={"Accept": "text/event-stream", **self.headers})
            self._sock = self._conn.sock  # http.client lets go of it when the answer says Connection: close
            response = self._conn.getresponse()
            self.status = response.status
            self.response_headers = {k.lower(): v for k, v in response.getheaders()}
            self.opened.set()
            buffer = b""
            while True:
                chunk = response.read1(65536)
                if not chunk:
                    break
                now = time.monotonic()
                self.raw += chunk
                buffer += chunk
                while b"\n\n" in buffer:
                    block, buffer = buffer.split(b"\n\n", 1)
                    self.blocks.append(_parse_block(now, block.decode("utf-8")))
        except BaseException as exc:  # reported to the test
            self.error = exc
        finally:
            self.opened.set()
            self.done.set()

    def close(self) -> None:
        """Go away like a browser tab closing: shut the socket down and close it."""
        sock = self._sock or self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._conn.close()

    def wait(self, timeout: float = 20.0) -> SSEReader:
        assert self.done.wait(timeout), "the stream did not end in time"
        return self

    @property
    def events(self) -> list[Block]:
        return [block for block in list(self.blocks) if block.is_event]


def _parse_block(at: float, text: str) -> Block:
    fields: list[tuple[str, str]] = []
    comments: list[str] = []
    for line in text.split("\n"):
        if line.startswith(":"):
            comments.append(line[1:].strip())
        elif line:
            name, _, value = line.partition(":")
            fields.append((name, value[1:] if value.startswith(" ") else value))
    return Block(at, fields, comments)


def stream(base: str, task_id: str, headers: Optional[dict[str, str]] = None) -> SSEReader:
    """Open the relay's stream of ``task_id`` and read it on a thread."""
    return SSEReader(f"{base}/stream?taskId={task_id}", headers=dict(headers or {})).start()


def flux(prompt: str = "a red fox", **extra: Any) -> dict[str, Any]:
    return {"app": "infsh/flux-schnell", "input": {"prompt": prompt, **extra}}
