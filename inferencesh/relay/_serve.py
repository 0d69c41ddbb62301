"""Serving the relay: ``mount`` (a path dispatcher), ``serve_relay`` (``infsh relay``),
and ``RelayServer`` (waitress on a background thread, for tests and benchmarks).

Why waitress: it is a production WSGI server that users deploy as is, pure
Python on every OS (gunicorn needs Unix), threaded (one thread per open
stream, which a blocking SDK needs), it sends each chunk an application
yields at once (``send_bytes=1`` by default, so events are never held back),
and with ``channel_request_lookahead`` it keeps reading the socket while a
response streams and tells the application through
``environ["waitress.client_disconnected"]`` that the browser has gone, so a
relay on a quiet task notices within ``poll`` seconds, not at its next write.
"""

from __future__ import annotations

import sys
import threading
from importlib import resources
from typing import TYPE_CHECKING, Any, Optional

from ._wsgi import Relay

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

MOUNT = "/api/inference"
#: waitress settings for a relay: room for many open streams, disconnects noticed while streaming.
WAITRESS_OPTIONS: dict[str, Any] = {"threads": 32, "channel_request_lookahead": 1, "ident": "inferencesh-relay"}


def page_html() -> bytes:
    """The example browser page (``examples/browser/index.html``, shipped as package data)."""
    return resources.files("inferencesh.relay").joinpath("static/index.html").read_bytes()


def mount(app: WSGIApplication, prefix: str, relay: WSGIApplication) -> WSGIApplication:
    """A WSGI application sending ``prefix`` and everything under it to ``relay``, the rest to ``app``.

    ``prefix`` is a path such as ``"/api/inference"``; the relay sees it in
    ``SCRIPT_NAME`` and the rest in ``PATH_INFO``, as WSGI mounting does.
    """
    prefix = "/" + prefix.strip("/")

    def dispatch(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if path == prefix or path.startswith(prefix + "/"):
            environ = dict(environ)
            environ["SCRIPT_NAME"] = str(environ.get("SCRIPT_NAME", "")) + prefix
            environ["PATH_INFO"] = path[len(prefix) :]
            return relay(environ, start_response)
        return app(environ, start_response)

    return dispatch


def _page(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path not in ("", "/", "/index.html") or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        body = b"not found\n"
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    body = page_html()
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ],
    )
    return [body]


def site(relay: Relay) -> WSGIApplication:
    """The example page at ``/`` and ``relay`` at ``/api/inference`` (what ``infsh relay`` serves)."""
    return mount(_page, MOUNT, relay)


class RelayServer:
    """waitress serving ``app`` on a background thread (``with RelayServer(app) as server``).

    Binds ``host:port`` (port 0: an ephemeral one) with ``WAITRESS_OPTIONS``
    plus ``options``; ``url`` is ``http://host:port``. ``stop()`` closes every
    connection and joins the threads. Raises ``OSError`` when it cannot bind.
    """

    def __init__(self, app: WSGIApplication, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        create_server = _create_server()

        self._server: Any = create_server(app, host=host, port=port, **{**WAITRESS_OPTIONS, **options})
        self.host = host
        self.port: int = int(self._server.effective_port)
        self._thread = threading.Thread(target=self._server.run, name=f"inferencesh-relay-server-{self.port}")
        self._thread.daemon = True

    @property
    def url(self) -> str:
        """``http://host:port`` of this server."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> RelayServer:
        """Start serving; returns self."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every connection, let the worker threads finish, end the loop thread."""
        from waitress import wasyncore  # type: ignore[import-untyped]

        server = self._server
        if not self._thread.is_alive():
            server.task_dispatcher.shutdown(timeout=timeout)
            return

        def close_connections() -> None:  # on waitress' loop thread, which owns the sockets
            for dispatcher in list(server._map.values()):
                if dispatcher is server.trigger:
                    continue
                if dispatcher is server:
                    wasyncore.dispatcher.close(server)  # the listener only; the trigger stays for now
                else:
                    dispatcher.handle_close()  # marks the channel gone: its stream ends within ``poll``

        server.trigger.pull_trigger(close_connections)
        server.task_dispatcher.shutdown(timeout=timeout)
        try:
            server.trigger.pull_trigger(server.trigger.close)  # an empty map ends the loop
        except OSError:
            pass  # woken by a worker's pull, the loop ran our thunk before our own byte was written
        self._thread.join(timeout)

    def __enter__(self) -> RelayServer:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()


def serve_relay(
    host: str = "127.0.0.1", port: int = 8000, upstream: Optional[str] = None, api_key: Optional[str] = None
) -> None:
    """Serve the relay at ``/api/inference`` and the example page at ``/`` until Ctrl-C (``infsh relay``).

    ``upstream`` is the API base URL (default ``INFERENCE_BASE_URL``, then
    https://api.inference.sh); ``api_key`` defaults to ``INFERENCE_API_KEY``
    and is never printed. Runs waitress in the foreground with
    ``WAITRESS_OPTIONS``. Raises ``UsageError`` for a bad upstream URL and
    ``OSError`` when the address cannot be bound; returns after Ctrl-C.
    """
    create_server = _create_server()
    relay = Relay(api_key=api_key, base_url=upstream)
    server: Any = create_server(site(relay), host=host, port=port, **WAITRESS_OPTIONS)
    shown = f"[{host}]" if ":" in host else host
    print(f"inferencesh relay: http://{shown}:{server.effective_port}/  (relay at {MOUNT})", file=sys.stderr)
    print(f"upstream: {relay.upstream}", file=sys.stderr)
    if relay.client._api_key is None:
        print("warning: no API key (INFERENCE_API_KEY is not set); requests go upstream without one", file=sys.stderr)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        relay.close()


def _create_server() -> Any:
    """waitress's ``create_server``; an ImportError naming the extra to install when waitress is missing."""
    try:
        from waitress.server import create_server  # type: ignore[import-untyped]
    except ModuleNotFoundError as exc:
        if exc.name != "waitress":
            raise
        raise ModuleNotFoundError(
            'serving the relay needs the relay extra (no module named \'waitress\'): pip install "inferencesh[relay]"',
            name="waitress",
        ) from None
    return create_server
