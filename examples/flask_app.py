"""A Flask app with the browser relay mounted at /api/inference, and the example page at /.

    INFERENCE_API_KEY=inf_... python examples/flask_app.py     # then open http://127.0.0.1:5000/

The page (examples/browser/index.html) starts runs with POST /api/inference/proxy and follows
them with new EventSource('/api/inference/stream?taskId=...'); the key stays in this process.
Served by waitress: threaded (each open stream holds one thread), every event written at once,
and ``channel_request_lookahead=1`` lets the relay notice a closed tab within 0.1 s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from flask import Flask, Response, send_from_directory
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from inferencesh.relay import WAITRESS_OPTIONS, Relay

PAGE_DIR = Path(__file__).resolve().parent / "browser"


def create_app(relay: Optional[Relay] = None) -> Flask:
    """The Flask app; ``relay`` defaults to ``Relay()`` (INFERENCE_API_KEY / INFERENCE_BASE_URL)."""
    app = Flask(__name__)

    @app.get("/")
    def index() -> Response:
        return send_from_directory(PAGE_DIR, "index.html")

    # Mount the relay (a plain WSGI app) beside Flask's own routes.
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/api/inference": relay or Relay()})
    return app


if __name__ == "__main__":
    import waitress

    waitress.serve(create_app(), host="127.0.0.1", port=5000, **WAITRESS_OPTIONS)
