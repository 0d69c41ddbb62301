"""A Flask app with the browser relay mounted at /api/inference, and the example pages at / and /sdk/.

    INFERENCE_API_KEY=inf_... python examples/flask_app.py     # then open http://127.0.0.1:5000/

The page at / (examples/browser/index.html) starts runs with POST /api/inference/proxy and follows
them with new EventSource('/api/inference/stream?taskId=...'). The page at /sdk/
(examples/browser/sdk/) runs the official JavaScript SDK with
``inference({proxyUrl: '/api/inference/proxy'})``: the same mount forwards its calls to the API.
Either way the key stays in this process.
Served by waitress: threaded (each open stream holds one thread), every event written at once,
and ``channel_request_lookahead=1`` lets the relay notice a closed tab within 0.1 s.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Optional

from flask import Flask, Response, send_from_directory
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from inferencesh.relay import WAITRESS_OPTIONS, Relay

PAGE_DIR = Path(__file__).resolve().parent / "browser"
SDK_DIR = PAGE_DIR / "sdk"


def sdk_page(upstream: str) -> str:
    """The official-SDK page, told which API base URL its targets name (the relay's upstream)."""
    html = (SDK_DIR / "index.html").read_text(encoding="utf-8")
    return html.replace('content=""', f'content="{escape(upstream)}"', 1)


def create_app(relay: Optional[Relay] = None) -> Flask:
    """The Flask app; ``relay`` defaults to ``Relay()`` (INFERENCE_API_KEY / INFERENCE_BASE_URL)."""
    app = Flask(__name__)
    relay = relay or Relay()

    @app.get("/")
    def index() -> Response:
        return send_from_directory(PAGE_DIR, "index.html")

    @app.get("/sdk/")
    def sdk_index() -> Response:
        return Response(sdk_page(relay.upstream), content_type="text/html; charset=utf-8")

    @app.get("/sdk/page.bundle.js")
    def sdk_bundle() -> Response:
        return send_from_directory(SDK_DIR, "page.bundle.js")

    # Mount the relay (a plain WSGI app) beside Flask's own routes.
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/api/inference": relay})
    return app


if __name__ == "__main__":
    import waitress

    waitress.serve(create_app(), host="127.0.0.1", port=5000, **WAITRESS_OPTIONS)
