"""Running the app: ``LocalServer`` (a background thread) and ``serve`` (foreground)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Callable, Optional, cast

import uvicorn
from starlette.applications import Starlette

from ._app import RequestRecord, ServerState, create_app
from ._conn import protocol_class
from ._files import DEFAULT_MAX_FILE_BYTES, FileStore

_GRACE = 2.0  # seconds a connection gets to finish on stop before it is cut


class _Server(uvicorn.Server):
    """uvicorn.Server that ends our streams first and stops without 0.1 s naps."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self._on_shutdown = on_shutdown
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def startup(self, sockets: Optional[list[socket.socket]] = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await super().startup(sockets=sockets)
        self.ready.set()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            assert self._wake is not None
            try:
                await asyncio.wait_for(self._wake.wait(), 0.1)
            except asyncio.TimeoutError:
                pass

    def request_exit(self) -> None:
        """Ask the server to stop; callable from any thread."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop closed in between
                pass

    async def shutdown(self, sockets: Optional[list[socket.socket]] = None) -> None:
        self._on_shutdown()
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _GRACE
        while (state.connections or state.tasks) and loop.time() < deadline:
            for connection in list(state.connections):
                connection.shutdown()  # closes idle ones, ends keep-alive on busy ones
            await asyncio.sleep(0.01)
        for connection in list(state.connections):
            connection.transport.abort()
        for task in list(state.tasks):
            task.cancel()
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()


def _config(app: Starlette, state: ServerState, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=protocol_class(state.registry),
        ws="none",
        lifespan="off",
        loop="asyncio",
        timeout_graceful_shutdown=int(_GRACE),
        # scope["client"] must stay the TCP peer: the reset/torn faults find the socket by it
        proxy_headers=False,
        **extra,
    )


class LocalServer:
    """The protocol server on a background thread, for tests, demos and notebooks.

    ``with LocalServer() as server:`` binds 127.0.0.1 on an ephemeral port
    (``port=0``) and serves PROTOCOL.md (``LocalServer(dialect="hosted")``:
    HOSTED.md) at ``server.url`` until the block ends.

    Arguments: ``api_key`` (None accepts any Authorization; a string requires
    ``Bearer <key>``), ``speed`` (divides every app delay), ``heartbeat``
    (seconds of silence before a ``: ping``), ``retry_ms`` (the ``retry:``
    sent first on each stream), ``faults`` (fault specs armed on every task,
    see the package docstring), ``status_names`` (send lowercase status
    names instead of integer codes; v1 only), ``dialect`` ("v1": PROTOCOL.md;
    "hosted": HOSTED.md, where ``heartbeat`` is the seconds of silence before
    a heartbeat object and ``retry_ms`` is unused), ``max_file_bytes`` (the
    largest file ``POST /files`` and the upload take: 413 above it; default
    512 MiB), ``files_url`` (the ``http://host:port`` put in the file URLs
    handed out instead of the request's own, e.g. a proxy standing for
    another host). A bad fault spec or dialect raises ``ValueError``;
    ``start()`` raises ``OSError`` when the address cannot be bound. Stored
    files live in a temporary directory deleted on ``stop()``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: Optional[str] = None,
        speed: float = 1.0,
        heartbeat: float = 15.0,
        retry_ms: int = 1000,
        faults: Optional[Sequence[dict[str, Any]]] = None,
        status_names: bool = False,
        dialect: str = "v1",
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        files_url: Optional[str] = None,
    ) -> None:
        self.app = create_app(
            api_key=api_key,
            speed=speed,
            heartbeat=heartbeat,
            retry_ms=retry_ms,
            faults=faults,
            status_names=status_names,
            dialect=dialect,
            max_file_bytes=max_file_bytes,
            files_url=files_url,
        )
        self._state = cast(ServerState, self.app.state.infsh)
        self._dialect = dialect
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``http://<host>:<port>`` of the running server; RuntimeError before start."""
        if self._server is None:
            raise RuntimeError("LocalServer is not running; call start() or use `with`")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def dialect(self) -> str:
        """The dialect this server speaks: "v1" (PROTOCOL.md) or "hosted" (HOSTED.md)."""
        return self._dialect

    @property
    def port(self) -> int:
        """The bound TCP port (the ephemeral one once started with ``port=0``)."""
        return self._port

    @property
    def open_connections(self) -> int:
        """TCP connections to the server open right now."""
        return self._state.registry.count

    @property
    def open_streams(self) -> int:
        """Task event streams being served right now."""
        return self._state.streams.value

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the records of every request received so far, in order.

        Each has ``method``, ``path``, ``last_event_id``, ``idempotency_key``,
        ``authorization``, ``user_agent``, ``accept``, ``api_version``
        (``X-API-Version``) (header values or None) and ``status`` (the
        response status, None if none was sent).
        """
        return self._state.requests.snapshot()

    def clear_requests(self) -> None:
        """Forget the request records gathered so far."""
        self._state.requests.clear()

    def start(self) -> LocalServer:
        """Bind and serve in a daemon thread; returns once accepting connections."""
        if self._server is not None:
            raise RuntimeError("LocalServer already started")
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
            sock.listen(2048)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        server = _Server(_config(self.app, self._state, log_config=None), self._state.store.shutdown)
        thread = threading.Thread(
            target=self._run, args=(server, sock), name=f"inferencesh-server-{self._port}", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        while not server.ready.wait(0.005):
            if not thread.is_alive():
                self._server = self._thread = None
                sock.close()
                raise RuntimeError(f"LocalServer failed to start: {self._error!r}")
        return self

    def _run(self, server: _Server, sock: socket.socket) -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported by start(), never lost silently
            self._error = exc

    def stop(self, timeout: float = 5.0) -> None:
        """End every open stream, close every connection, join the thread. Idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.request_exit()
        thread.join(timeout)
        self._server = self._thread = None
        cast(FileStore, self.app.state.files).close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"<LocalServer {where}>"


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    api_key: Optional[str] = None,
    speed: float = 1.0,
    heartbeat: float = 15.0,
    retry_ms: int = 1000,
    faults: Optional[Sequence[dict[str, Any]]] = None,
    status_names: bool = False,
    log_level: str = "info",
    dialect: str = "v1",
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> None:
    """Serve in the foreground on ``host:port`` until Ctrl-C (``infsh serve``).

    Same options as ``LocalServer``; uvicorn logs to the console at
    ``log_level``. Returns normally after Ctrl-C; raises ``SystemExit`` when
    the address cannot be bound.
    """
    app = create_app(
        api_key=api_key,
        speed=speed,
        heartbeat=heartbeat,
        retry_ms=retry_ms,
        faults=faults,
        status_names=status_names,
        dialect=dialect,
        max_file_bytes=max_file_bytes,
    )
    state = cast(ServerState, app.state.infsh)
    config = _config(app, state, host=host, port=port, log_level=log_level)
    server = _Server(config, state.store.shutdown)
    try:
        asyncio.run(server.serve())
    except KeyboardInterrupt:  # uvicorn re-raises the captured Ctrl-C after shutdown
        pass
    finally:
        cast(FileStore, app.state.files).close()
