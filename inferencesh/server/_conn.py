"""Who is connected: a uvicorn h11 protocol that counts and indexes connections.

The registry lets a request handler reach the TCP transport of its own
connection (by the client address in the ASGI scope), which the ``reset``
and ``torn`` faults need to act below HTTP.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Optional

from uvicorn.protocols.http.h11_impl import H11Protocol


class ConnectionRegistry:
    """Live connections of one server, keyed by the peer's (host, port).

    ``count`` may be read from any thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_peer: dict[tuple[str, int], asyncio.Transport] = {}
        self._count = 0

    @property
    def count(self) -> int:
        """Number of TCP connections open right now."""
        return self._count

    def opened(self, peer: Optional[tuple[str, int]], transport: asyncio.Transport) -> None:
        with self._lock:
            self._count += 1
            if peer is not None:
                self._by_peer[peer] = transport

    def closed(self, peer: Optional[tuple[str, int]]) -> None:
        with self._lock:
            self._count -= 1
            if peer is not None:
                self._by_peer.pop(peer, None)

    def transport(self, peer: Any) -> asyncio.Transport | None:
        """The transport of the connection from ``peer`` (``scope["client"]``)."""
        if not peer:
            return None
        with self._lock:
            return self._by_peer.get((str(peer[0]), int(peer[1])))


def protocol_class(registry: ConnectionRegistry) -> type[H11Protocol]:
    """An ``H11Protocol`` subclass reporting to ``registry``; pass it as ``http=``."""

    class CountingH11Protocol(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            registry.opened(self.client, transport)

        def connection_lost(self, exc: Exception | None) -> None:
            registry.closed(self.client)
            super().connection_lost(exc)

    return CountingH11Protocol
