"""A real HTTP server that records every request it gets (method, path, headers, body) and answers by path.

Used as the relay's upstream where the test must see the exact headers that arrived (cookies,
``Authorization``, ``x-inf-*``), and as the "evil" host that must never hear from the relay.

Paths (under any prefix): ``.../redirect`` 302 to ``?to=``; ``.../gzip`` a gzipped JSON body with
``Content-Encoding`` and ``Content-Length``; ``.../lines`` chunked NDJSON, each line written when the
test calls ``release()``; anything else 200 ``{"ok": true, "path": ...}`` with ``Set-Cookie`` and
``Content-Length``.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # lowercased names
    body: bytes


class Recorder:
    """``with Recorder.serve() as rec``: ``rec.url``, ``rec.seen`` (a list of ``Seen``), ``release()``."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.lines: list[threading.Event] = [threading.Event() for _ in range(3)]
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                recorder.seen.append(Seen(self.command, self.path, headers, body))
                path = urlsplit(self.path).path
                if path.endswith("/redirect"):
                    to = parse_qs(urlsplit(self.path).query).get("to", ["http://example.invalid/"])[0]
                    self._send(302, b"", [("Location", to)])
                elif path.endswith("/gzip"):
                    packed = gzip.compress(json.dumps({"zipped": True}).encode())
                    self._send(200, packed, [("Content-Type", "application/json"), ("Content-Encoding", "gzip")])
                elif path.endswith("/lines"):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-ndjson")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for number, gate in enumerate(recorder.lines, 1):
                        gate.wait(30)
                        line = b'{"line": %d}\n' % number
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    payload = json.dumps({"ok": True, "path": self.path, "method": self.command}).encode()
                    cookie = ("Set-Cookie", "upstream_session=abc; Path=/")
                    self._send(200, payload, [("Content-Type", "application/json"), cookie])

            def _send(self, code: int, body: bytes, headers: list[tuple[str, str]]) -> None:
                self.send_response(code)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def release(self, line: int) -> None:
        """Let ``.../lines`` write its line number ``line`` (1-based)."""
        self.lines[line - 1].set()

    @classmethod
    @contextmanager
    def serve(cls) -> Iterator[Recorder]:
        recorder = cls()
        thread = threading.Thread(target=recorder._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield recorder
        finally:
            for gate in recorder.lines:
                gate.set()
            recorder._server.shutdown()
            recorder._server.server_close()
