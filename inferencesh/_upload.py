"""The upload walk: every ``File`` and ``pathlib.Path`` in a run's input, uploaded and replaced by its ``uri``.

Only ``File`` objects and ``pathlib.PurePath`` objects are files; strings are
never touched, whatever they look like. The files of one input go in one
``POST /files`` (to the base URL, with the key, retried by the transport),
then their bytes go by ``PUT`` to each answer's ``upload_url`` (another
host: no key, ``_foreign``), a few at a time on a small thread pool, each
streamed from disk and retried under the transport's policy (the file is
reopened for each attempt). Equal files in one input are uploaded once.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import PurePath
from typing import Any, BinaryIO, Optional

from ._errors import Cancelled, ProtocolError, StreamTimeout, UploadError, UsageError
from ._foreign import is_http_url, send
from ._retry import Retryable
from ._transport import Transport
from ._watchdog import CancelToken, _Abort
from .files import File, UploadedFile

#: Uploads of one input at once, at most.
MAX_PARALLEL_UPLOADS = 4


def _as_file(value: Any) -> Optional[File]:
    if isinstance(value, File):
        return value
    if isinstance(value, PurePath):
        return File(value)
    return None


def find_files(value: Any) -> list[File]:
    """The distinct files in ``value`` (mappings, lists and tuples walked), in order of appearance."""
    found: dict[File, None] = {}
    inside: set[int] = set()  # the containers on the current path: a cycle is left to the JSON check

    def walk(item: Any) -> None:
        file = _as_file(item)
        if file is not None:
            found.setdefault(file, None)
        elif isinstance(item, (Mapping, list, tuple)) and id(item) not in inside:
            inside.add(id(item))
            for child in item.values() if isinstance(item, Mapping) else item:
                walk(child)
            inside.discard(id(item))

    walk(value)
    return list(found)


def replace_files(value: Any, uris: Mapping[File, str]) -> Any:
    """``value`` with each file replaced by ``uris[file]`` (a placeholder for JSON checks, a URI for the run)."""
    file = _as_file(value)
    if file is not None:
        return uris[file]
    if isinstance(value, Mapping):
        return {key: replace_files(child, uris) for key, child in value.items()}
    if isinstance(value, (list, tuple)):
        return [replace_files(child, uris) for child in value]
    return value


def json_view(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its files as placeholder strings, for the JSON check made before anything is sent."""
    files = find_files(body.get("input"))
    if not files:
        return body
    try:
        return {**body, "input": replace_files(body["input"], {file: "<file>" for file in files})}
    except RecursionError:
        raise UsageError("config is not JSON-serialisable: the input contains itself") from None


def upload_input(
    transport: Transport, body: dict[str, Any], scope: _Abort, cancel: Optional[CancelToken]
) -> dict[str, Any]:
    """``body`` with every file of its input uploaded and replaced by its ``uri`` (the same body without any)."""
    files = find_files(body.get("input"))
    if not files:
        return body
    uploaded = upload_files(transport, files, scope, cancel)
    uris = {file: done.uri for file, done in zip(files, uploaded)}
    return {**body, "input": replace_files(body["input"], uris)}


def _open(file: File) -> BinaryIO:
    if file.data is not None:
        return io.BytesIO(file.data)
    assert file.path is not None
    return open(file.path, "rb")


def _described(answer: Any, count: int) -> list[dict[str, Any]]:
    if isinstance(answer, Mapping) and isinstance(answer.get("files"), list):
        answer = answer["files"]
    if not isinstance(answer, list) or len(answer) != count:
        raise ProtocolError(f"POST /files did not answer a list of {count} file(s)")
    for item in answer:
        if not isinstance(item, Mapping) or not isinstance(item.get("uri"), str) or not item["uri"]:
            raise ProtocolError("POST /files answered a file without a uri")
        if not is_http_url(item.get("upload_url")):
            raise ProtocolError("POST /files answered a file without an http(s) upload_url")
    return [dict(item) for item in answer]


def _put(transport: Transport, file: File, size: int, upload_url: str, scope: _Abort) -> None:
    headers = {"Content-Type": file.mime_type, "Content-Length": str(size)}
    try:
        for attempt in transport.policy(scope):
            with attempt, _open(file) as body:
                send(transport, "PUT", upload_url, scope=scope, error=UploadError, data=body, headers=headers).close()
    except Retryable as exc:
        scope.check()
        raise exc.error from None


def _put_all(
    transport: Transport, jobs: list[tuple[File, int, str]], scope: _Abort, cancel: Optional[CancelToken]
) -> None:
    if len(jobs) == 1:
        _put(transport, *jobs[0], scope)
        return
    # Each thread gets a scope of its own (a scope shuts down one socket), on the run's deadline and on a
    # token fired by the run's token or by the first failure, so one error or a cancel stops them all.
    stop = CancelToken()
    key = None if cancel is None else cancel._subscribe(stop.cancel)

    def one(file: File, size: int, url: str) -> None:
        child = _Abort(scope.remaining(), stop)
        try:
            _put(transport, file, size, url, child)
        finally:
            child.close()

    executor = ThreadPoolExecutor(min(MAX_PARALLEL_UPLOADS, len(jobs)), thread_name_prefix="inferencesh-upload")
    try:
        futures = [executor.submit(one, *job) for job in jobs]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(future.exception() is not None for future in done):
            stop.cancel()
        wait(futures)
    except BaseException:
        stop.cancel()  # Ctrl-C
        raise
    finally:
        executor.shutdown(wait=True)
        if cancel is not None:
            cancel._unsubscribe(key)
    errors = [error for error in (future.exception() for future in futures) if error is not None]
    if errors:
        scope.check()  # the run's own deadline or the caller's cancel: its error
        real = [error for error in errors if not isinstance(error, Cancelled)]  # not the others stopping
        error = real[0] if real else errors[0]
        if isinstance(error, StreamTimeout) and scope.timeout is not None:
            raise StreamTimeout(scope.timeout) from None
        raise error


def upload_files(
    transport: Transport, files: list[File], scope: _Abort, cancel: Optional[CancelToken] = None
) -> list[UploadedFile]:
    """Upload ``files`` (one ``POST /files``, then the ``PUT``s); their ``UploadedFile``s, in order."""
    sizes = [file.size() for file in files]  # UsageError for a missing file, before anything is sent
    specs = [
        {"uri": "", "filename": file.name, "content_type": file.mime_type, "size": size}
        for file, size in zip(files, sizes)
    ]
    answer = transport.call("POST", "/files", scope=scope, body={"files": specs})
    described = _described(answer, len(files))
    _put_all(transport, [(f, n, str(d["upload_url"])) for f, n, d in zip(files, sizes, described)], scope, cancel)
    return [
        UploadedFile(
            uri=str(item["uri"]),
            filename=item["filename"] if isinstance(item.get("filename"), str) else file.name,
            content_type=item["content_type"] if isinstance(item.get("content_type"), str) else file.mime_type,
            size=item["size"] if isinstance(item.get("size"), int) and not isinstance(item["size"], bool) else size,
        )
        for file, size, item in zip(files, sizes, described)
    ]
