"""A ``LocalServer`` in a child process, with a pipe to ask it questions.

The child has its own GIL, so the server's work does not slow the client
being measured, and its CPU and RSS are its own. ``ask("open_connections")``,
``ask("open_streams")`` and ``ask("requests")`` (a list of dicts) read the
server's gauges and records; ``pid`` is for psutil. The child is a plain
``python bench/_localserver.py '<options as JSON>'`` talking JSON lines over
stdin/stdout, and exits when its stdin closes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from types import TracebackType
from typing import Any, Optional


def _child(options: dict[str, Any]) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from inferencesh.server import LocalServer

    with LocalServer(**options) as server:
        print(json.dumps(server.url), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stop":
                break
            value = getattr(server, command)
            if command == "requests":
                value = [dataclasses.asdict(record) for record in value]
            print(json.dumps(value), flush=True)


class ServerProcess:
    """``with ServerProcess(speed=..., heartbeat=...) as server:`` — ``server.url`` while inside."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.url = ""
        self._process: Optional[subprocess.Popen[str]] = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def ask(self, attribute: str) -> Any:
        """The server's ``open_connections``, ``open_streams`` or ``requests`` right now."""
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        process.stdin.write(attribute + "\n")
        process.stdin.flush()
        return json.loads(process.stdout.readline())

    def __enter__(self) -> ServerProcess:
        self._process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), json.dumps(self.options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self._process.wait(10)
            raise RuntimeError("LocalServer child did not start")
        self.url = json.loads(line)
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            assert process.stdin is not None
            process.stdin.write("stop\n")
            process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]))
