"""The browser relay: a WSGI application that lets a web page run and follow tasks
without ever holding the API key (PROTOCOL.md, "Browser relay").

::

    from inferencesh import inference
    from inferencesh.relay import make_relay, mount

    relay = make_relay(inference(api_key="inf_..."))          # or Relay(api_key=..., base_url=...)
    application = mount(my_wsgi_app, "/api/inference", relay)  # any WSGI stack

    # Flask: app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/api/inference": relay})

Under its mount the relay answers ``POST /proxy`` (start a run),
``GET /stream?taskId=ID`` (the task's events as server-sent events, resumable
with the browser's ``Last-Event-ID``) and ``POST /cancel?taskId=ID``. Serve it
with waitress (``channel_request_lookahead=1``, enough ``threads`` for the open
streams); ``serve_relay()`` (``infsh relay``) does that with the example page.
"""

from __future__ import annotations

from ._serve import WAITRESS_OPTIONS, RelayServer, mount, page_html, serve_relay, site
from ._validate import AppAllowList
from ._wsgi import DEFAULT_MAX_BODY_BYTES, Relay, make_relay

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "WAITRESS_OPTIONS",
    "AppAllowList",
    "Relay",
    "RelayServer",
    "make_relay",
    "mount",
    "page_html",
    "serve_relay",
    "site",
]
