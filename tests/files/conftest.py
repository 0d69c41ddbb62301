"""Files in and out against ``LocalServer`` in both dialects, with raw TCP helpers standing for other hosts.

``Recorder`` is a TCP forwarder on a port of its own: a ``LocalServer`` made
with ``files_url=recorder.url`` hands out upload and file URLs on it, so it
is "the other host" (a pre-signed storage URL, a CDN). It keeps every byte
the clients sent it, to prove that no key went there, and can cut a
response short, answer a first request with 503, or hold connections until
several are open at once (to prove uploads run concurrently).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from typing import Optional

import psutil
import pytest

from inferencesh import Client
from inferencesh.server import LocalServer
from tests.helpers import quick_client

KEY = "inf_files_s3cr3t_key_0123456789"


class Recorder:
    """A forwarder to ``127.0.0.1:target_port`` that records what clients send through it.

    ``cut_after``: the first ``cuts`` connections get only that many bytes of
    the answer, then are closed. ``fail_first``: the first that many
    connections are answered ``503`` (``Retry-After: 0``) and closed.
    ``hold``: the first ``hold`` connections are forwarded only once that
    many are open at once (``broken`` tells they never were, within 10 s).
    """

    def __init__(
        self,
        target_port: int,
        *,
        cut_after: Optional[int] = None,
        cuts: int = 1,
        fail_first: int = 0,
        hold: int = 0,
    ) -> None:
        self.target_port = target_port
        self.cut_after, self.cuts, self.fail_first = cut_after, cuts, fail_first
        self._barrier = threading.Barrier(hold, timeout=10) if hold > 1 else None
        self.broken = False
        self.sent: list[bytearray] = []  # per connection: every byte the client sent
        self.answered: list[int] = []  # per connection: bytes forwarded back to the client
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def everything(self) -> bytes:
        with self._lock:
            return b"".join(bytes(chunk) for chunk in self.sent)

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                index = len(self.sent)
                self.sent.append(bytearray())
                self.answered.append(0)
            threading.Thread(target=self._serve, args=(conn, index), daemon=True).start()

    def _serve(self, conn: socket.socket, index: int) -> None:
        if index < self.fail_first:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                head += chunk
            with self._lock:
                self.sent[index] += head
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\nContent-Length: 0\r\n")
            conn.sendall(b"Connection: close\r\n\r\n")
            conn.close()
            return
        if self._barrier is not None and index < self._barrier.parties:
            try:
                self._barrier.wait()
            except threading.BrokenBarrierError:
                self.broken = True
                conn.close()
                return
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        limit = self.cut_after if self.cut_after is not None and index < self.cuts else None
        threading.Thread(target=self._pump_up, args=(conn, upstream, index), daemon=True).start()
        self._pump_down(upstream, conn, index, limit)

    def _pump_up(self, client: socket.socket, upstream: socket.socket, index: int) -> None:
        try:
            while True:
                chunk = client.recv(65536)
                if not chunk:
                    break
                with self._lock:
                    self.sent[index] += chunk
                upstream.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(upstream)

    def _pump_down(self, upstream: socket.socket, client: socket.socket, index: int, limit: Optional[int]) -> None:
        try:
            while True:
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                if limit is not None:
                    chunk = chunk[: max(0, limit - self.answered[index])]
                client.sendall(chunk)
                with self._lock:
                    self.answered[index] += len(chunk)
                if limit is not None and self.answered[index] >= limit:
                    break
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class PeakRSS:
    """Samples this process's resident memory on a thread; ``peak`` is the most seen (bytes)."""

    def __init__(self) -> None:
        self._process = psutil.Process(os.getpid())
        self.start = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.start


@pytest.fixture(scope="module", params=["v1", "hosted"])
def server(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    """A LocalServer that needs ``KEY``, in each dialect."""
    with LocalServer(speed=50, api_key=KEY, dialect=request.param, max_file_bytes=64 * 1024 * 1024) as running:
        yield running


@pytest.fixture()
def client(server: LocalServer) -> Iterator[Client]:
    with quick_client(server.url, KEY) as made:
        yield made
