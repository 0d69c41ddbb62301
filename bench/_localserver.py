"""A ``LocalServer`` in a child process, with a pipe to ask it questions.

The child has its own GIL, so the server's work does not slow the client
being measured, and its CPU and RSS are its own. ``ask("open_connections")``
and ``ask("open_streams")`` read the server's gauges; ``pid`` is for psutil.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any, Optional


def _child(conn: Connection, options: dict[str, Any]) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    from inferencesh.server import LocalServer

    with LocalServer(**options) as server:
        conn.send(server.url)
        while True:
            try:
                command = conn.recv()
            except EOFError:
                break
            if command == "stop":
                break
            conn.send(getattr(server, command))
    conn.send("stopped")


class ServerProcess:
    """``with ServerProcess(speed=..., heartbeat=...) as server:`` — ``server.url`` while inside."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.url = ""
        self._conn: Optional[Connection] = None
        self._process: Optional[Any] = None

    @property
    def pid(self) -> int:
        assert self._process is not None and self._process.pid is not None
        return int(self._process.pid)

    def ask(self, attribute: str) -> Any:
        """The server's ``open_connections`` or ``open_streams`` right now."""
        assert self._conn is not None
        self._conn.send(attribute)
        return self._conn.recv()

    def __enter__(self) -> ServerProcess:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self._process = context.Process(target=_child, args=(theirs, self.options), daemon=True)
        self._process.start()
        theirs.close()
        if not ours.poll(60):
            self._process.kill()
            raise RuntimeError("LocalServer child did not start")
        self.url = ours.recv()
        self._conn = ours
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            try:
                conn.send("stop")
                conn.poll(10)
            except (OSError, EOFError):
                pass
            conn.close()
        if process is not None:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
