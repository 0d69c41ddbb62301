"""Helpers shared by every test folder."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from inferencesh import Client, inference


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` every ``interval`` seconds until it is truthy (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def quick_client(base_url: str, api_key: str, **settings: Any) -> Client:
    """A client tuned for a fast local server: idle reads time out after 2 × 0.5 s, reconnects in 20–200 ms.

    Further keyword arguments are ``Settings`` fields (``stream_format``, ``dialect``, ...).
    """
    tuned: dict[str, Any] = {"heartbeat_interval": 0.5, "backoff_initial": 0.02, "backoff_max": 0.2, **settings}
    return inference(api_key=api_key, base_url=base_url, **tuned)


class Gate:
    """A TCP forwarder on a loopback port of its own to ``target_port``: ``cut()`` cuts the server off
    (every connection closed, new ones refused), ``restore()`` lets clients through again on the same port."""

    def __init__(self, target_port: int) -> None:
        import socket as _socket

        self._socket = _socket
        self.target_port = target_port
        probe = _socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._conns: list[Any] = []
        self._listener: Any = None
        self._lock = threading.Lock()
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restore(self) -> None:
        listener = self._socket.socket()
        listener.setsockopt(self._socket.SOL_SOCKET, self._socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(self._socket.SHUT_RDWR)  # wakes the accept() blocked in its thread
            except OSError:
                pass
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(self._socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self.cut()

    def _accept(self, listener: Any) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = self._socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: Any, sink: Any) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(1)  # SHUT_WR: pass the end of the stream on
            except OSError:
                pass
