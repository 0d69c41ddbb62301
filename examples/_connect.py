"""Shared by the examples: a client for the real service, or for the local simulation server.

Which server an example talks to:

- ``INFERENCE_API_KEY`` set and no ``INFERENCE_BASE_URL``: the real service (the SDK's default,
  https://api.inference.sh).
- ``INFERENCE_BASE_URL`` set: that server.
- ``--local`` on the command line, or no key and no base URL: an embedded ``LocalServer``
  (needs the ``server`` extra).

Whenever the server is the local simulation (embedded, or a loopback ``INFERENCE_BASE_URL`` such
as ``infsh serve``), the example's first line of output says so.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from typing import NamedTuple, Optional
from urllib.parse import urlsplit

from inferencesh import Client, inference

#: The command-line flag that asks for the embedded local server.
LOCAL_FLAG = "--local"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class Choice(NamedTuple):
    """Where the examples' client goes: ``base_url`` (``None``: the SDK's default), or an embedded server."""

    embedded: bool
    base_url: Optional[str]
    hint: Optional[str]  # how to reach the real service instead; ``None`` when it is the real service


def choose(local: bool, environ: Mapping[str, str]) -> Choice:
    """The server when ``--local`` was given or not, in this environment (see the module docstring)."""
    base_url = environ.get("INFERENCE_BASE_URL") or None
    key = environ.get("INFERENCE_API_KEY") or None
    if local:
        return Choice(True, None, f"drop {LOCAL_FLAG} to use the real service")
    if base_url is not None:
        local = urlsplit(base_url).hostname in LOOPBACK_HOSTS
        return Choice(False, base_url, "unset INFERENCE_BASE_URL to use the real service" if local else None)
    if key is None:
        return Choice(True, None, "set INFERENCE_API_KEY to use the real service")
    return Choice(False, None, None)


def _take_local_flag() -> bool:
    """Remove ``--local`` from ``sys.argv`` (so an example's own argparse never sees it); was it there?"""
    present = LOCAL_FLAG in sys.argv[1:]
    sys.argv[1:] = [arg for arg in sys.argv[1:] if arg != LOCAL_FLAG]
    return present


_LOCAL_ASKED = _take_local_flag()  # at import: examples parse their own arguments before connect()


def _say_simulated(url: str, hint: str) -> None:
    print(f"(using the local simulation server at {url}: {hint})", flush=True)


@contextlib.contextmanager
def connect(local: Optional[bool] = None) -> Iterator[Client]:
    """Yield a client for the server :func:`choose` picks (``local``: whether ``--local`` was given)."""
    choice = choose(_LOCAL_ASKED if local is None else local, os.environ)
    if not choice.embedded:
        with inference(base_url=choice.base_url) as client:
            if choice.hint is not None:
                _say_simulated(client.base_url, choice.hint)
            yield client
        return
    from inferencesh.server import LocalServer

    with LocalServer(speed=20) as server, inference(api_key="local", base_url=server.url) as client:
        assert choice.hint is not None
        _say_simulated(server.url, choice.hint)
        yield client
