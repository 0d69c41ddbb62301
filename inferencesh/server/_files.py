"""Files on the local server, both dialects: ``POST /files``, the upload target, stored files.

The flow is the hosted service's (HOSTED.md): ``POST /files`` (with the key)
with ``{"files": [{"uri": "", "filename", "content_type", "size"}]}``
answers one description per file, ``{"id", "uri", "upload_url", "filename",
"content_type", "size"}``; the bytes then go by ``PUT upload_url``, and the
file is public at ``uri``. As a pre-signed URL is, the upload target is a URL
of its own that the server checks without any key: a random token in the
path (``/uploads/<token>``), valid until the server stops, reusable (a
retried ``PUT`` replaces the bytes). ``GET`` (and ``HEAD``) of
``/files/<id>/<name>`` need no key either, as output files on the hosted
service are public, and honour ``Range`` (``206``, ``416``).

Bytes are streamed to a temporary directory on disk, never held in memory
(the directory goes when the server stops). A file larger than the server's
``max_file_bytes`` is refused with ``413``: at ``POST /files`` when its
declared ``size`` is too large, at the ``PUT`` by ``Content-Length`` or, when
the body runs over, as soon as it does. ``uri`` and ``upload_url`` are made
from the base URL the request was sent to, or from ``files_url`` when the
server was given one (a test can put "another host" in front of the files).

The apps use ``FileStore.add`` to publish an output file (``infsh/flux-schnell``'s
PNG) and ``FileStore.local_path`` to read an input file (``infsh/image-info``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, cast
from urllib.parse import quote, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

#: The largest file the server takes unless told otherwise (bytes).
DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024
_UPLOADS, _FILES = "/uploads/", "/files/"


@dataclass
class StoredFile:
    """One file: its description, the upload token, and whether its bytes arrived."""

    id: str
    filename: str
    content_type: str
    size: int
    token: str
    path: Path
    complete: bool = False

    def describe(self, base: str) -> dict[str, Any]:
        """The file as ``POST /files`` answers it, with URLs made from ``base``."""
        return {
            "id": self.id,
            "uri": f"{base}{_FILES}{self.id}/{quote(self.filename, safe='')}",
            "upload_url": f"{base}{_UPLOADS}{self.token}",
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
        }


class FileStore:
    """The server's files, on disk under a temporary directory; thread-safe.

    ``max_file_bytes`` caps one file; ``files_url`` (an ``http://host:port``)
    replaces the request's base URL in the URLs handed out.
    """

    def __init__(self, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, files_url: Optional[str] = None) -> None:
        if max_file_bytes <= 0:
            raise ValueError("max_file_bytes must be > 0")
        self.max_file_bytes = max_file_bytes
        self.files_url = files_url.rstrip("/") if files_url else None
        self.root = Path(tempfile.mkdtemp(prefix="infsh-files-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.root), True)
        self._lock = threading.Lock()
        self._by_id: dict[str, StoredFile] = {}
        self._by_token: dict[str, StoredFile] = {}

    def base(self, request: Request) -> str:
        """The base URL of the URLs to hand out for ``request``."""
        return self.files_url or str(request.base_url).rstrip("/")

    def create(self, filename: str, content_type: str, size: int) -> StoredFile:
        """A new file waiting for its bytes."""
        file_id = "file_" + secrets.token_hex(10)
        stored = StoredFile(file_id, filename, content_type, size, secrets.token_urlsafe(24), self.root / file_id)
        with self._lock:
            self._by_id[file_id] = stored
            self._by_token[stored.token] = stored
        return stored

    def add(self, data: bytes, filename: str, content_type: str) -> StoredFile:
        """Store ``data`` at once (an app's output file)."""
        stored = self.create(filename, content_type, len(data))
        stored.path.write_bytes(data)
        stored.complete = True
        return stored

    def by_token(self, token: str) -> Optional[StoredFile]:
        with self._lock:
            return self._by_token.get(token)

    def by_id(self, file_id: str) -> Optional[StoredFile]:
        with self._lock:
            return self._by_id.get(file_id)

    def local_path(self, url: str) -> Optional[Path]:
        """The path on disk of the stored, complete file ``url`` names (any host), else None."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.path.startswith(_FILES):
            return None
        stored = self.by_id(parts.path[len(_FILES) :].partition("/")[0])
        return stored.path if stored is not None and stored.complete else None

    def close(self) -> None:
        """Delete every stored file."""
        self._cleanup()


def is_public(method: str, path: str) -> bool:
    """True for the requests that need no key: the upload target and ``GET``/``HEAD`` of stored files."""
    return path.startswith(_UPLOADS) or (method in ("GET", "HEAD") and path.startswith(_FILES))


def _store(request: Request) -> FileStore:
    return cast(FileStore, request.app.state.files)


def _read_spec(spec: Any, limit: int) -> tuple[str, str, int]:
    """(filename, content type, size) of one entry of ``POST /files``; 422 or 413 when it cannot be taken."""
    if not isinstance(spec, dict):
        raise HTTPException(422, "each entry of 'files' must be an object")
    filename = spec.get("filename") or "file"
    content_type = spec.get("content_type") or "application/octet-stream"
    size = spec.get("size") or 0
    if not isinstance(filename, str) or not isinstance(content_type, str):
        raise HTTPException(422, "'filename' and 'content_type' must be strings")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise HTTPException(422, "'size' must be an integer >= 0")
    if size > limit:
        raise HTTPException(413, f"file {filename!r} is {size} bytes; this server takes files up to {limit} bytes")
    return os.path.basename(filename.replace("\\", "/")) or "file", content_type, size


async def create_files(request: Request) -> Response:
    """``POST /files``: one description per file, each with its ``upload_url``."""
    state, store = request.app.state.infsh, _store(request)
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, "the request body is not JSON") from None
    specs = body.get("files") if isinstance(body, dict) else None
    if not isinstance(specs, list) or not specs:
        raise HTTPException(422, "'files' must be a non-empty list")
    taken = [_read_spec(spec, store.max_file_bytes) for spec in specs]
    base = store.base(request)
    answer = [store.create(*spec).describe(base) for spec in taken]
    if state.dialect == "hosted":
        from ._hosted_wire import envelope

        return envelope(request, answer)
    return JSONResponse({"data": answer})


async def upload(request: Request) -> Response:
    """``PUT /uploads/{token}``: the file's bytes, streamed to disk; 413 past the size limit."""
    store = _store(request)
    stored = store.by_token(request.path_params["token"])
    if stored is None:
        raise HTTPException(404, "unknown upload URL")
    limit = store.max_file_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the upload is {declared} bytes; this server takes files up to {limit} bytes")
    partial = stored.path.with_name(f"{stored.id}.{secrets.token_hex(4)}.part")
    size = 0
    try:
        with open(partial, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"the upload ran over {limit} bytes, the largest file this server takes")
                out.write(chunk)
        os.replace(partial, stored.path)
    finally:
        if partial.exists():
            partial.unlink()
    stored.size, stored.complete = size, True
    stored.content_type = request.headers.get("content-type") or stored.content_type
    return Response(status_code=200)


async def get_file(request: Request) -> Response:
    """``GET /files/{id}/{name}``: the stored bytes (``Range`` honoured), no key needed."""
    stored = _store(request).by_id(request.path_params["file_id"])
    if stored is None or not stored.complete or request.path_params["name"] != stored.filename:
        raise HTTPException(404, "unknown file")
    return FileResponse(stored.path, media_type=stored.content_type, filename=None)


ROUTES = [
    Route("/files", create_files, methods=["POST"]),
    Route("/uploads/{token}", upload, methods=["PUT"]),
    Route("/files/{file_id}/{name}", get_file, methods=["GET", "HEAD"]),
]
