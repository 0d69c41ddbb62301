"""Files in and out: ``File`` for inputs, ``client.files.upload``, ``download`` and ``save_outputs``.

In: a ``File`` (or a ``pathlib.Path``) anywhere in a run's input is uploaded
before the run (``POST /files``, then ``PUT`` of the bytes to the answer's
``upload_url``, never with the key) and replaced by its ``uri``; plain
strings are never touched (``_upload``).

Out: ``download(url)`` and ``save_outputs(output, directory)`` stream file
URLs to disk under a temporary name, renamed once complete, resuming with
``Range`` after a cut (``_download``). Only ``http(s)`` URLs are files:
``data:`` URLs are not fetched (``download`` refuses them, ``save_outputs``
leaves them out); decode them with ``base64`` if you need their bytes.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional, Union

import attrs

from ._errors import UsageError
from ._transport import Transport

if TYPE_CHECKING:
    from .client import Client

__all__ = ["File", "Files", "UploadedFile", "download", "save_outputs"]

PathLike = Union[str, "os.PathLike[str]"]


def _to_path(value: Any) -> Optional[Path]:
    if value is None or isinstance(value, Path):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise UsageError("File(...) takes a path; pass bytes as File(data=..., filename=...)")
    if isinstance(value, str) or isinstance(value, os.PathLike):
        path = os.fspath(value)
        if isinstance(path, str) and path:
            return Path(path)
    raise UsageError(f"File(...) takes a path (str or os.PathLike), not {value!r}")


def _to_bytes(value: Any) -> Optional[bytes]:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise UsageError(f"File(data=...) takes bytes, not {type(value).__name__}")


def _optional_text(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise UsageError(f"File({attribute.name}=...) must be a non-empty string or None, not {value!r}")


@attrs.frozen
class File:
    """A file to send as an input: ``File("cat.png")``, ``File(path)`` or ``File(data=b"...", filename="x.wav")``.

    Exactly one of ``path`` and ``data``. ``filename`` defaults to the
    path's name (``"file"`` for data); ``content_type`` to the type guessed
    from the file name (``mimetypes``), else ``application/octet-stream``.
    A file on disk is read when it is uploaded, streamed, never whole into
    memory. Raises ``UsageError`` for anything else.
    """

    path: Optional[Path] = attrs.field(default=None, converter=_to_path)
    data: Optional[bytes] = attrs.field(default=None, converter=_to_bytes, kw_only=True, repr=False)
    filename: Optional[str] = attrs.field(default=None, kw_only=True, validator=_optional_text)
    content_type: Optional[str] = attrs.field(default=None, kw_only=True, validator=_optional_text)

    def __attrs_post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise UsageError("File needs exactly one of a path and data=")

    @property
    def name(self) -> str:
        """The name the file is uploaded under."""
        if self.filename:
            return self.filename
        return self.path.name if self.path is not None and self.path.name else "file"

    @property
    def mime_type(self) -> str:
        """``content_type``, else the type guessed from ``name``, else ``application/octet-stream``."""
        return self.content_type or mimetypes.guess_type(self.name)[0] or "application/octet-stream"

    def size(self) -> int:
        """The number of bytes to upload; ``UsageError`` when the path cannot be read."""
        if self.data is not None:
            return len(self.data)
        assert self.path is not None
        try:
            stat = self.path.stat()
        except OSError as exc:
            raise UsageError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        if not os.path.isfile(self.path):
            raise UsageError(f"{self.path} is not a regular file")
        return stat.st_size


@attrs.frozen
class UploadedFile:
    """A file the server holds: ``uri`` (what goes into an input), ``filename``, ``content_type``, ``size`` (bytes)."""

    uri: str
    filename: str
    content_type: str
    size: int


class Files:
    """``client.files``: uploads on the client's connection pool and retry policy."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def upload(
        self,
        file: Union[File, PathLike, bytes],
        *,
        filename: Optional[str] = None,
        content_type: Optional[str] = None,
        timeout: Optional[float] = None,
        cancel: Any = None,
    ) -> UploadedFile:
        """Upload one file; returns its ``UploadedFile`` (put ``.uri`` in an input).

        ``file`` is a ``File``, a path (str or ``os.PathLike``) or bytes;
        ``filename`` and ``content_type`` replace the file's own. ``timeout``
        (seconds) and ``cancel`` (a ``CancelToken``) work as for
        ``Client.run``. Retried on 408/429/5xx and network errors. Raises
        ``UsageError`` (unreadable path, bad arguments), ``APIError`` (the
        ``POST /files``, e.g. 413 for a file too large), ``UploadError`` (the
        ``PUT``), ``ProtocolError`` (an answer without ``upload_url``),
        ``StreamTimeout`` or ``Cancelled``.
        """
        from ._upload import upload_files
        from ._watchdog import _Abort

        if not isinstance(file, File):
            file = File(data=file) if isinstance(file, (bytes, bytearray, memoryview)) else File(file)
        if filename is not None or content_type is not None:
            file = attrs.evolve(
                file, filename=filename or file.filename, content_type=content_type or file.content_type
            )
        scope = _Abort(timeout, cancel)
        try:
            return upload_files(self._client._transport, [file], scope, cancel)[0]
        finally:
            scope.close()


def download(url: str, path: Optional[PathLike] = None, *, progress: Union[bool, Literal["always"]] = False) -> Path:
    """Save the file at ``url`` (http or https) to disk; returns the path written.

    ``path`` None: the URL's file name in the current directory; an existing
    directory: that name inside it; else the file to write (parent
    directories are created). The bytes are streamed to a temporary name
    beside the target and renamed once complete, so a partial file is never
    left under the final name; a download cut in the middle resumes with
    ``Range`` where the server supports it (else starts over), retried as
    other calls are. ``progress=True`` draws a tqdm bar on stderr where someone sees it (a terminal, Jupyter), as
    ``client.run``'s does; ``progress="always"`` draws it anywhere. No
    request carries an API key. Raises ``UsageError`` for a URL that is not
    http(s) (``data:`` included) or a name that would leave the directory,
    ``DownloadError`` when the bytes could not be fetched.
    """
    from ._download import fetch, target_for

    target = target_for(url, path)
    with _keyless() as transport:
        return fetch(transport, url, target, progress=progress)


def save_outputs(
    output: Any, directory: PathLike, *, progress: Union[bool, Literal["always"]] = False
) -> dict[str, Path]:
    """Download every http(s) URL in ``output`` (nested included) into ``directory``; returns where each went.

    The mapping's keys say where each URL sits in the output (``"image"``,
    ``"images[1]"``, ``"result.video"``; ``"output"`` for an output that is
    a URL itself), its values are the paths written. Each file is named
    after its URL (a name taken twice gets ``-1``, ``-2``...), a URL without
    a name after its key. ``data:`` URLs and other strings are left out.
    Raises ``UsageError`` before anything is fetched when a URL's name
    would leave the directory, ``DownloadError`` when a file could not be
    fetched (the files saved before it stay).
    """
    from ._download import fetch, plan

    planned = plan(output, Path(os.fspath(directory)))
    saved: dict[str, Path] = {}
    with _keyless() as transport:
        done: dict[str, Path] = {}
        for key, url, target in planned:
            if url not in done:
                done[url] = fetch(transport, url, target, progress=progress)
            saved[key] = done[url]
    return saved


@contextmanager
def _keyless() -> Iterator[Transport]:
    """A ``Transport`` without a key, with the default settings, closed on exit."""
    transport = Transport(
        api_key=None,
        base_url="http://files.invalid",
        pool_maxsize=4,
        connect_timeout=10.0,
        request_timeout=60.0,
        max_retries=5,
        backoff_initial=0.25,
        backoff_max=8.0,
        max_retry_delay=60.0,
    )
    try:
        yield transport
    finally:
        transport.close()
