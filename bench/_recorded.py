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
              runs far larger than any pre-recorded body), close-delimited;
``hosted``    a pre-recorded body in the hosted dialect (HOSTED.md), NDJSON or
              SSE (``--format``): the whole TaskDTO of a running task, then
              ``events`` partial updates ``{"data": {...}, "fields": [...]}``
              written the way the local server's hosted writer writes them
              (compact ASCII JSON; ``id``, ``status``, ``updated_at`` always;
              ``events`` with a status change; ``logs`` as whole log records;
              ``output`` with completed), each bringing one new log line, the
              last one completed;
``deltas``    the hosted body of an ``infsh/llm``-style answer: the TaskDTO,
              ``events`` ``delta`` objects of ``--delta-bytes`` characters of
              ``response`` each, then the partial update that completes it;
``hosted_ticker``  one hosted partial update every ``interval`` seconds, its
              log line carrying the send time, chunked.

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


def _dumps(value: object) -> bytes:
    """JSON as the local server's hosted writer writes it: compact and ASCII-escaped."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _hosted_events(statuses: int, *, terminal: bool = False) -> list[dict[str, object]]:
    codes = list(range(1, statuses + 1)) + ([10] if terminal else [])
    return [{"id": f"{TASK_ID}-ev{n}", "event_time": _TIMESTAMP, "status": code} for n, code in enumerate(codes, 1)]


def hosted_dto(content: str = "") -> dict[str, object]:
    """The whole TaskDTO a hosted stream opens with: running (received..running in ``events``)."""
    logs = [] if not content else [_record("setup", content)]
    return {
        "id": TASK_ID,
        "status": 7,
        "app_id": "infsh/bench",
        "input": {},
        "output": None,
        "error": None,
        "session_id": None,
        "created_at": _TIMESTAMP,
        "updated_at": _TIMESTAMP,
        "events": _hosted_events(7),
        "logs": logs,
    }


def _record(key: str, content: str) -> dict[str, object]:
    return {
        "id": f"{TASK_ID}-log{key}",
        "created_at": _TIMESTAMP,
        "updated_at": _TIMESTAMP,
        "log_type": 4,
        "content": content,
    }


def hosted_partial(i: int, n: int, *, line: Optional[str] = None, output: Optional[object] = None) -> dict[str, object]:
    """Partial update ``i`` of ``n`` (the last one completed), bringing one new log line.

    Each update's line is in a log record of its own (``<task>-log<i>``) and
    ``logs`` carries it whole: the local server's writer sends every record
    whole, so one record growing over 100,000 updates would make the body
    quadratic in size; records by id keep it linear and make the reader do
    the same work (merge, find the record's cursor, split the new lines).
    """
    terminal = i == n
    data: dict[str, object] = {"id": TASK_ID, "status": 10 if terminal else 7, "updated_at": _TIMESTAMP}
    fields = []
    if terminal:
        fields += ["status", "events"]
        data["events"] = _hosted_events(7, terminal=True)
    fields.append("logs")
    data["logs"] = [_record(str(i), (f"Step {i}/{n}" if line is None else line) + "\n")]
    if terminal:
        fields.append("output")
        data["output"] = {"n": n} if output is None else output
    fields.append("updated_at")
    return {"data": data, "fields": fields}


def hosted_frame(value: dict[str, object], fmt: str) -> bytes:
    """One hosted stream object as an NDJSON line or as the ``data`` of an unnamed SSE event."""
    text = _dumps(value)
    return text + b"\n" if fmt == "ndjson" else b"data: " + text + b"\n\n"


def hosted_objects(n: int) -> list[dict[str, object]]:
    """The objects of the pre-recorded hosted body: the TaskDTO and ``n`` partial updates."""
    return [hosted_dto()] + [hosted_partial(i, n) for i in range(1, n + 1)]


def delta_tokens(n: int, size: int) -> list[str]:
    """``n`` tokens of ``size`` characters (words of a made-up answer)."""
    words = ["the ", "fox ", "runs", " far", ", an", "d th", "en s", "tops"]
    return [(words[i % len(words)] * size)[:size] for i in range(n)]


def delta_objects(n: int, size: int) -> list[dict[str, object]]:
    """An ``infsh/llm``-style answer of ``n`` deltas of ``size`` characters, as hosted stream objects."""
    tokens = delta_tokens(n, size)
    objects: list[dict[str, object]] = [hosted_dto("simulated LLM: no model is loaded\n")]
    for seq, token in enumerate(tokens, 1):
        objects.append({"event": "delta", "data": {"delta": {"response": token}, "seq": seq, "resource_id": ""}})
    objects.append(hosted_partial(1, 1, line="Done", output={"response": "".join(tokens)}))
    return objects


def _chunk(block: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(block), block)


def _head(chunked: bool, fmt: str = "sse") -> bytes:
    framing = b"Transfer-Encoding: chunked\r\n" if chunked else b""
    media = b"application/x-ndjson" if fmt == "ndjson" else b"text/event-stream; charset=utf-8"
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: " + media + b"\r\n"
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
        blocks: Optional[list[bytes]] = None
        if args.mode == "recorded":
            blocks = recorded_events(args.events, logs=not args.no_logs)
        elif args.mode == "hosted":
            blocks = [hosted_frame(value, args.format) for value in hosted_objects(args.events)]
        elif args.mode == "deltas":
            blocks = [hosted_frame(value, args.format) for value in delta_objects(args.events, args.delta_bytes)]
        if blocks is not None:
            if self.chunked:
                body = b"".join(_chunk(block) for block in blocks) + b"0\r\n\r\n"
            else:
                body = b"".join(blocks)
            self.body = _head(self.chunked, args.format) + body

    def __call__(self, conn: socket.socket) -> None:
        try:
            with conn:
                if not _read_request(conn):
                    return
                mode = self.args.mode
                getattr(self, "_recorded" if mode in ("hosted", "deltas") else "_" + mode)(conn)
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

    def _hosted_ticker(self, conn: socket.socket) -> None:
        n, interval, fmt = self.args.events, self.args.interval, self.args.format
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(_head(True, fmt) + _chunk(hosted_frame(hosted_dto(), fmt)))
        start = time.monotonic()
        for i in range(1, n + 1):
            delay = start + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            conn.sendall(_chunk(hosted_frame(hosted_partial(i, n, line=f"sent {time.monotonic()!r}"), fmt)))
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
        fmt: str = "sse",
        delta_bytes: int = 4,
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
            "--format",
            fmt,
            "--delta-bytes",
            str(delta_bytes),
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
    parser.add_argument("mode", choices=["recorded", "ticker", "stall", "endless", "hosted", "deltas", "hosted_ticker"])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--framing", choices=["close", "chunked"], default="close")
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--no-logs", action="store_true")
    parser.add_argument("--format", choices=["sse", "ndjson"], default="sse", help="hosted modes: the body's format")
    parser.add_argument("--delta-bytes", type=int, default=4, help="deltas: characters per delta")
    _serve(parser.parse_args())


if __name__ == "__main__":
    main()
