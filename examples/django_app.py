"""A one-file Django project with the browser relay mounted at /api/inference, the pages at / and /sdk/.

    INFERENCE_API_KEY=inf_... python examples/django_app.py    # then open http://127.0.0.1:8000/

In a real project, wrap the application in your wsgi.py the same way:
``application = mount(get_wsgi_application(), "/api/inference", Relay())``. The relay sits beside
Django (not inside a view) so that its event streams go straight to the WSGI server, one event
at a time, with no middleware buffering them. The page at /sdk/ (examples/browser/sdk/) runs the
official JavaScript SDK with ``inference({proxyUrl: '/api/inference/proxy'})``, which the same
mount forwards to the API with the key.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from django.conf import settings

from inferencesh.relay import WAITRESS_OPTIONS, Relay, mount

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication
    from django.http import HttpRequest, HttpResponse

PAGE = Path(__file__).resolve().parent / "browser" / "index.html"
SDK_DIR = PAGE.parent / "sdk"

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="example-only-not-secret",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"],
        INSTALLED_APPS=[],
    )


def index(request: HttpRequest) -> HttpResponse:
    from django.http import HttpResponse

    return HttpResponse(PAGE.read_bytes(), content_type="text/html; charset=utf-8")


def sdk_index(request: HttpRequest) -> HttpResponse:
    from django.http import HttpResponse

    html = (SDK_DIR / "index.html").read_text(encoding="utf-8")
    # The API base URL the page's SDK names in its targets: the relay's upstream (set by ``create_app``).
    api = getattr(settings, "INFERENCE_API_BASE_URL", "https://api.inference.sh")
    html = html.replace('content=""', f'content="{escape(api)}"', 1)
    return HttpResponse(html, content_type="text/html; charset=utf-8")


def sdk_bundle(request: HttpRequest) -> HttpResponse:
    from django.http import HttpResponse

    return HttpResponse((SDK_DIR / "page.bundle.js").read_bytes(), content_type="text/javascript; charset=utf-8")


def _urlpatterns() -> list[object]:
    from django.urls import path

    return [path("", index), path("sdk/", sdk_index), path("sdk/page.bundle.js", sdk_bundle)]


urlpatterns = _urlpatterns()


def create_app(relay: Optional[Relay] = None) -> WSGIApplication:
    """Django's WSGI application with ``relay`` (default ``Relay()`` from the environment) at /api/inference."""
    from django.core.wsgi import get_wsgi_application

    relay = relay or Relay()
    settings.INFERENCE_API_BASE_URL = relay.upstream
    return mount(get_wsgi_application(), "/api/inference", relay)


if __name__ == "__main__":
    import waitress

    waitress.serve(create_app(), host="127.0.0.1", port=8000, **WAITRESS_OPTIONS)
