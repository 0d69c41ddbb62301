"""Raw-socket event-stream servers for the benchmarks: no HTTP framework in the way.

Run as a subprocess (``RawServer``), so that the bytes leave the kernel as
fast as the socket takes them and no server work competes with the reader for
the reader's GIL. Every connection gets the same answer, chosen by ``mode``:

``recorded``  a pre-recorded body of ``events`` TaskUpdate events (the last one
              completed), sent with ``sendall`` as fast as the socket drains,
              close-delimited or chunked (one HTTP chunk per event, as uvicorn
              and sse-starlette frame a live stream);
``ticker``    one event every ``interval`` seconds, its ``partial_output``
              carrying the send time (``time.monotonic()``, one clock for
              every process on Linux), chunked;
``stall``     headers, ``retry:`` and one event, then silence until the peer
              goes (a server that hangs);
``endless``   ``events`` updates generated on the fly in batches (for memory
              runs far larger than any pre-recorded body), close-delimited.

The parent reads the bound port from the child's first stdout line; the child
exits when its stdin closes, so a crashed benchmark leaves no server behind.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from types import TracebackType
from typing import Optional

TASK_ID = "tsk_bench00000000000000000"
STREAM_PATH = f"/tasks/{TASK_ID}/stream"
_TIMESTAMP = "2026-01-01T00:00:00.000Z"
_BATCH = 1000


def update_data(i: int, n: int, *, logs: bool = True, sent: Optional[float] = None) -> bytes:
    """The TaskUpdate JSON of event ``i`` of ``n`` (the last one completed), shaped like LocalServer's."""
    terminal = i == n
    update = {
        "task_id": TASK_ID,
        "status": 10 if terminal else 7,
        "progress": {"current": i, "total": n},
        "logs": [f"Step {i}/{n}"] if logs else [],
        "partial_output": None if sent is None else {"sent": sent},
        "output": {"n": n} if terminal else None,
        "error": None,
        "timestamp": _TIMESTAMP,
    }
    return json.dumps(update, separators=(",", ":")).encode()


def event_bytes(i: int, data: bytes) -> bytes:
    return b"id: %d\nevent: update\ndata: %s\n\n" % (i, data)


def recorded_events(n: int, *, logs: bool = True) -> list[bytes]:
    """The ``retry:`` block and the ``n`` events of the pre-recorded body, one bytes object each."""
    return [b"retry: 1000\n\n"] + [event_bytes(i, update_data(i, n, logs=logs)) for i in range(1, n + 1)]


def _chunk(block: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(block), block)


def _head(chunked: bool) -> bytes:
    framing = b"Transfer-Encoding: chunked\r\n" if chunked else b""
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        b"Cache-Control: no-store\r\nConnection: close\r\n" + framing + b"\r\n"
    )


def _read_request(conn: socket.socket) -> bool:
    data = b""
    while b"\r\n\r\n" not in data:
        part = conn.recv(65536)
        if not part:
            return False
        data += part
    return True


def _wait_peer_gone(conn: socket.socket) -> None:
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


class _Handler:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.chunked = args.framing == "chunked"
        if args.mode == "recorded":
            blocks = recorded_events(args.events, logs=not args.no_logs)
            if self.chunked:
                body = b"".join(_chunk(block) for block in blocks) + b"0\r\n\r\n"
            else:
                body = b"".join(blocks)
            self.body = _head(self.chunked) + body

    def __call__(self, conn: socket.socket) -> None:
        try:
            with conn:
                if not _read_request(conn):
                    return
                getattr(self, "_" + self.args.mode)(conn)
        except OSError:
            pass  # the reader went away: nothing to serve

    def _recorded(self, conn: socket.socket) -> None:
        conn.sendall(self.body)
        conn.shutdown(socket.SHUT_WR)
        _wait_peer_gone(conn)

    def _endless(self, conn: socket.socket) -> None:
        n = self.args.events
        conn.sendall(_head(False) + b"retry: 1000\n\n")
        for start in range(1, n + 1, _BATCH):
            stop = min(n, start + _BATCH - 1)
            conn.sendall(
                b"".join(event_bytes(i, update_data(i, n, logs=not self.args.no_logs)) for i in range(start, stop + 1))
            )
        conn.shutdown(socket.SHUT_WR)
        _wait_peer_gone(conn)

    def _ticker(self, conn: socket.socket) -> None:
        n, interval = self.args.events, self.args.interval
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(_head(True) + _chunk(b"retry: 1000\n\n"))
        start = time.monotonic()
        for i in range(1, n + 1):
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            conn.sendall(_chunk(event_bytes(i, update_data(i, n, sent=time.monotonic()))))
        conn.sendall(b"0\r\n\r\n")
        conn.shutdown(socket.SHUT_WR)
        _wait_peer_gone(conn)

    def _stall(self, conn: socket.socket) -> None:
        conn.sendall(_head(True) + _chunk(b"retry: 1000\n\n" + event_bytes(1, update_data(1, 2))))
        _wait_peer_gone(conn)


def _serve(args: argparse.Namespace) -> None:
    handler = _Handler(args)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    print(listener.getsockname()[1], flush=True)

    def watch_parent() -> None:
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


class RawServer:
    """A ``_recorded.py`` server in a child process; ``url`` while inside ``with``."""

    def __init__(
        self,
        mode: str,
        *,
        events: int = 0,
        framing: str = "close",
        interval: float = 0.01,
        logs: bool = True,
    ) -> None:
        self.argv = [
            sys.executable,
            os.path.abspath(__file__),
            mode,
            "--events",
            str(events),
            "--framing",
            framing,
            "--interval",
            repr(interval),
        ] + ([] if logs else ["--no-logs"])
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> RawServer:
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip():
            raise RuntimeError(f"raw server {self.argv[2]} did not start")
        self.port = int(line)
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["recorded", "ticker", "stall", "endless"])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--framing", choices=["close", "chunked"], default="close")
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--no-logs", action="store_true")
    _serve(parser.parse_args())


if __name__ == "__main__":
    main()
