"""Downloads: safe names, a temporary file renamed when complete, ``Range`` resumes, a tqdm bar.

One attempt is one ``GET`` (redirects followed without the key,
``_foreign``); its body goes to disk 1 MiB at a time. When the connection
is cut or the body ends short, the next attempt (under the transport's
retry policy) asks ``Range: bytes=<have>-`` with ``If-Range`` (the ETag or
Last-Modified of the first answer): a ``206`` whose ``Content-Range``
starts there is appended, anything else starts the file over. Bodies are
asked for with ``Accept-Encoding: identity`` so byte counts are the file's.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal, Optional, Union
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from tqdm import tqdm

from ._answers import describe
from ._errors import DownloadError, UsageError
from ._foreign import check_http_url, get_following, is_http_url, shown_url
from ._retry import Retryable
from ._transport import Transport
from ._watchdog import _Abort

CHUNK = 1024 * 1024
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def url_name(url: str) -> Optional[str]:
    """The file name the URL's path ends with, percent-decoded; None when there is none.

    Raises ``UsageError`` when that name would leave a directory (``..``, a
    slash or backslash once decoded, a NUL).
    """
    last = urlsplit(url).path.rsplit("/", 1)[-1]
    name = unquote(last)
    if not name:
        return None
    if name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise UsageError(f"the file name of {shown_url(url)} would leave the directory: {name!r}")
    return _UNSAFE.sub("_", name)[-200:]


def _inside(directory: Path, name: str) -> Path:
    """``directory / name``, refused (``UsageError``) unless it resolves to a file right inside ``directory``."""
    target = directory / name
    if target.resolve().parent != directory.resolve():
        raise UsageError(f"{name!r} would leave {directory}")
    return target


def target_for(url: str, path: Any) -> Path:
    """Where ``download(url, path)`` writes: see ``inferencesh.download``."""
    check_http_url(url)
    if path is not None:
        given = Path(os.fspath(path))
        if not given.is_dir():
            return given
        directory = given
    else:
        directory = Path.cwd()
    name = url_name(url)
    if name is None:
        raise UsageError(f"{shown_url(url)} names no file; pass the path to write")
    return _inside(directory, name)


def _walk(value: Any, key: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        if is_http_url(value):
            yield key or "output", value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _walk(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk(item, f"{key}[{index}]" if key else f"[{index}]")


def _unique(name: str, taken: set[str]) -> str:
    stem, dot, suffix = name.rpartition(".")
    if not stem:
        stem, dot, suffix = name, "", ""
    candidate, n = name, 0
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem}-{n}{dot}{suffix}"
    taken.add(candidate.lower())
    return candidate


def plan(output: Any, directory: Path) -> list[tuple[str, str, Path]]:
    """(key, url, target) for each http(s) URL of ``output``; every name checked before anything is fetched."""
    planned: list[tuple[str, str, Path]] = []
    taken: set[str] = set()
    named: dict[str, Path] = {}
    for key, url in _walk(output, ""):
        if url not in named:
            name = url_name(url) or re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("._") or "output"
            named[url] = _inside(directory, _unique(name, taken))
        planned.append((key, url, named[url]))
    return planned


class _Progress:
    """What survives between attempts: bytes on disk, the validator for ``If-Range``, the bar."""

    def __init__(self, bar: Any) -> None:
        self.have = 0
        self.validator: Optional[str] = None
        self.bar = bar

    def restart(self, out: BinaryIO) -> None:
        out.seek(0)
        out.truncate()
        self.have = 0
        self.bar.reset()


def _resumed_at(response: requests.Response) -> Optional[int]:
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    return int(match.group(1)) if match else None


def _chunks(response: requests.Response) -> Iterator[bytes]:
    """The body as it arrives: ``read1`` hands out what came (up to 1 MiB), so a cut loses no byte received."""
    read1 = getattr(response.raw, "read1", None)
    if read1 is None:  # urllib3 before 2.1
        yield from response.iter_content(CHUNK)
        return
    while True:
        chunk = read1(CHUNK, decode_content=True)
        if not chunk:
            return
        yield chunk


def _attempt(transport: Transport, url: str, out: BinaryIO, state: _Progress, scope: _Abort) -> None:
    headers = {"Accept-Encoding": "identity"}
    if state.have:
        headers["Range"] = f"bytes={state.have}-"
        if state.validator:
            headers["If-Range"] = state.validator
    response = get_following(transport, url, scope=scope, error=DownloadError, headers=headers, allow=(416,))
    shown = shown_url(url)
    with response:
        if response.status_code == 416:  # what we hold no longer matches: start over
            state.restart(out)
            raise Retryable(DownloadError(f"GET {shown}: range not satisfiable", url=shown, status_code=416))
        if response.status_code == 206 and _resumed_at(response) == state.have:
            out.seek(state.have)
        else:
            if response.status_code != 200:
                raise DownloadError(
                    f"GET {shown} answered {response.status_code}", url=shown, status_code=response.status_code
                )
            state.restart(out)
            state.validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
            if state.validator and state.validator.startswith("W/"):
                state.validator = response.headers.get("Last-Modified")
        length = response.headers.get("Content-Length")
        expected = state.have + int(length) if length and length.isdigit() else None
        if expected is not None and state.bar.total != expected:
            state.bar.reset(total=expected)
            state.bar.update(state.have)
        try:
            for chunk in _chunks(response):
                out.write(chunk)
                state.have += len(chunk)
                state.bar.update(len(chunk))
        except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            scope.check()
            reason = describe(exc)
            raise Retryable(DownloadError(f"GET {shown} cut off: {reason}", url=shown), reason=reason) from None
        finally:
            scope.detach()
        if expected is not None and state.have < expected:
            message = f"GET {shown} cut off after {state.have} of {expected} bytes"
            raise Retryable(DownloadError(message, url=shown))


def fetch(
    transport: Transport,
    url: str,
    target: Path,
    *,
    progress: Union[bool, Literal["always"]] = False,
    timeout: Optional[float] = None,
) -> Path:
    """Download ``url`` to ``target`` (see ``inferencesh.download``); returns ``target``."""
    check_http_url(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Beside the target (so the rename is atomic), created with the umask's permissions, as the target would be.
    partial = target.parent / f".{target.name[:100]}.{secrets.token_hex(6)}.part"
    bar = tqdm(
        total=None,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=target.name,
        file=sys.stderr,
        disable=not _draws(progress),
        leave=True,
    )
    scope = _Abort(timeout)
    state = _Progress(bar)
    try:
        with open(partial, "xb") as out:
            try:
                for attempt in transport.policy(scope):
                    with attempt:
                        _attempt(transport, url, out, state, scope)
            except Retryable as exc:
                scope.check()
                raise exc.error from None
        os.replace(partial, target)
    except DownloadError as exc:
        exc.path = str(target)
        raise
    finally:
        bar.close()
        scope.close()
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def _draws(progress: Any) -> bool:
    """As ``client.run``'s ``progress=``: True draws where someone sees it (a terminal, Jupyter), "always" anywhere."""
    from .progress import _force_for, _visible

    force = _force_for(progress)
    return _visible(None) if force is None else force
