"""Ctrl-C (SIGINT) in a process that is reading a stream: it ends at once and the SDK closes the connection."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from inferencesh.server import LocalServer
from tests.helpers import wait_until

from .conftest import read_until

CHILD = textwrap.dedent(
    """
    import sys
    from inferencesh import inference

    client = inference()
    config = {"app": "infsh/sleep", "input": {"seconds": 1, "_faults": [{"kind": "stall", "after": 2, "seconds": 60}]}}
    try:
        for update in client.run(config, stream=True):
            print(update.status, flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.stdin.readline()  # stay alive: the test checks the SDK closed the connection, not the exit
    """
)


def test_sigint_ends_a_silent_stream_at_once_and_closes_its_connection(
    server: LocalServer, env: dict[str, str]
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        read_until(process.stdout, lambda line: line.strip() == "running")  # then 60 s of silence
        assert wait_until(lambda: server.open_streams >= 1)
        assert server.open_connections >= 1
        process.send_signal(signal.SIGINT)
        assert read_until(process.stdout, lambda line: True).strip() == "interrupted"
        assert process.poll() is None  # still alive...
        assert wait_until(lambda: server.open_connections == 0, timeout=3)  # ...and its connection is closed
        # The server notices the stream is gone a moment after the socket (its stall fault is asleep).
        assert wait_until(lambda: server.open_streams == 0, timeout=3)
    finally:
        process.stdin.close()
        code = process.wait(10) if process.poll() is None else process.returncode
    assert code == 0
