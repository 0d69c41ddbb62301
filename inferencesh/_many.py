"""Many tasks at once on one client: ``run_many`` and ``stream_many``.

Both run each task on a thread of a ``concurrent.futures`` pool (a blocking
read needs a thread of its own) under one batch: one deadline (``timeout``,
seconds from the call) and one internal ``CancelToken`` that the caller's
token, a first failure, ``close()`` or Ctrl-C fire. Every thread is joined
before the call (or the iteration) ends, so ``threading.enumerate()`` is back
where it was.

``stream_many``'s readers hand updates to the consumer through a bounded
channel: a reader blocks while it is full, stops reading its socket, and TCP
pushes back on the server, so memory stays flat however slow the consumer.

The client's connection pool grows to the number of workers when it is
smaller (urllib3 keeps at most ``pool_maxsize`` connections per host and
throws the extras away): ``client.settings.pool_maxsize`` then shows the new
size, and the client keeps it. Connections already pooled stay usable until
the client is closed; new ones go to a pool of the new size.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, Optional, Union, overload

import attrs

from ._errors import StreamTimeout, UsageError
from ._merged import CLOSED, Channel, MergedStream
from ._stream import TaskStream
from ._watchdog import CancelToken
from .models import Task, TaskUpdate

if TYPE_CHECKING:
    from typing_extensions import Literal

    from .client import Client

__all__ = ["ManyMixin", "run_many", "stream_many"]

#: ``stream_many`` follows at most this many streams at once unless told otherwise.
DEFAULT_STREAM_WORKERS = 256
#: Updates ``stream_many`` holds per open stream before its readers wait for the consumer.
QUEUED_PER_STREAM = 4

_POOL_LOCK = threading.Lock()


def grow_pool(client: Client, size: int) -> None:
    """Let ``client`` keep up to ``size`` connections per host (it never shrinks)."""
    with _POOL_LOCK:
        if client.settings.pool_maxsize >= size:
            return
        client.settings = attrs.evolve(client.settings, pool_maxsize=size)
        client._transport.resize_pool(size)


def _check_configs(configs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    from .client import _run_body

    if isinstance(configs, Mapping) or isinstance(configs, (str, bytes)):
        raise UsageError("configs must be a list of configs like [{'app': ..., 'input': {...}}, ...]")
    listed = list(configs)
    for config in listed:
        _run_body(config)
    return listed


def _check_workers(max_workers: Any) -> None:
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise UsageError(f"max_workers must be an int >= 1, not {max_workers!r}")


def _check_abort_args(timeout: Any, cancel: Any) -> None:
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0):
        raise UsageError(f"timeout must be a number of seconds >= 0 or None, not {timeout!r}")
    if cancel is not None and not isinstance(cancel, CancelToken):
        raise UsageError(f"cancel must be a CancelToken or None, not {type(cancel).__name__}")


class _Batch:
    """One deadline and one internal token for every task of a call."""

    def __init__(self, started: float, timeout: Optional[float], cancel: Optional[CancelToken]) -> None:
        self.timeout = timeout
        self.deadline = None if timeout is None else started + timeout
        self.token = CancelToken()
        self._user = cancel
        self._key = None if cancel is None else cancel._subscribe(self.token.cancel)

    def remaining(self) -> Optional[float]:
        """Seconds left for the next task; ``StreamTimeout`` when none are."""
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise StreamTimeout(self.timeout or 0.0)
        return left

    def translate(self, error: Exception) -> Exception:
        """A task's own timeout is the batch's: report the batch's ``timeout``."""
        if isinstance(error, StreamTimeout) and self.timeout is not None and error.timeout != self.timeout:
            return StreamTimeout(self.timeout, error.task_id)
        return error

    def close(self) -> None:
        if self._user is not None:
            self._user._unsubscribe(self._key)
            self._user = None


def run_many(
    client: Client,
    configs: Iterable[Mapping[str, Any]],
    *,
    max_workers: int = 8,
    timeout: Optional[float] = None,
    cancel: Optional[CancelToken] = None,
    return_exceptions: bool = False,
    cancel_task_on_abort: bool = False,
) -> list[Union[Task, Exception]]:
    """``Client.run_many``: every config as ``client.run(config)`` would, ``max_workers`` at a time."""
    listed = _check_configs(configs)
    _check_workers(max_workers)
    _check_abort_args(timeout, cancel)
    if not listed:
        return []
    batch = _Batch(time.monotonic(), timeout, cancel)
    workers = min(max_workers, len(listed))
    grow_pool(client, workers)
    results: list[Any] = [None] * len(listed)
    first: list[Exception] = []
    lock = threading.Lock()

    def one(index: int, config: Mapping[str, Any]) -> None:
        try:
            if first:
                return
            results[index] = client.run(
                config, timeout=batch.remaining(), cancel=batch.token, cancel_task_on_abort=cancel_task_on_abort
            ).raise_for_status()
        except Exception as exc:
            error = batch.translate(exc)
            results[index] = error
            if not return_exceptions:
                with lock:
                    if not first:
                        first.append(_which(error, index, config))
                        batch.token.cancel()

    executor = ThreadPoolExecutor(workers, thread_name_prefix="inferencesh-many")
    try:
        wait([executor.submit(one, index, config) for index, config in enumerate(listed)])
    except BaseException:
        batch.token.cancel()  # Ctrl-C: stop every run, and with cancel_task_on_abort their tasks
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        batch.close()
    if first:
        raise first[0]
    return results


def _which(error: Exception, index: int, config: Mapping[str, Any]) -> Exception:
    """``error``, its message and attributes saying which config failed (``.index``, ``.app``); same type."""
    app = config.get("app")
    error.index = index  # type: ignore[attr-defined]
    error.app = app  # type: ignore[attr-defined]
    if error.args and isinstance(error.args[0], str):
        error.args = (f"config {index} ({app}): {error.args[0]}", *error.args[1:])
    return error


_UPDATE, _FAILED, _FINISHED = "update", "failed", "finished"


class _Hub:
    """What the reader threads share with the merging generator (never the generator itself)."""

    def __init__(self, batch: _Batch, size: int) -> None:
        self.batch = batch
        self.channel = Channel(size)
        self.lock = threading.Lock()
        self.active: dict[int, TaskStream] = {}
        self.stopping = False

    def register(self, index: int, stream: TaskStream) -> bool:
        with self.lock:
            if not self.stopping:
                self.active[index] = stream
                return True
        stream.close()
        return False

    def unregister(self, index: int) -> None:
        with self.lock:
            self.active.pop(index, None)

    def stop(self, quietly: bool) -> None:
        """Quietly: close every stream (its task keeps running). Else: cancel them (a Ctrl-C or an error)."""
        with self.lock:
            self.stopping = True
            streams = list(self.active.values())
        if quietly:
            for stream in streams:
                stream.close()
        self.batch.token.cancel()  # also cuts short any POST still under way

    def wake(self) -> None:
        """Stop quietly while the merging generator runs in another thread: it ends and joins the readers."""
        self.stop(quietly=True)
        self.channel.close()


def _follow(client: Client, hub: _Hub, index: int, config: Mapping[str, Any], cancel_task_on_abort: bool) -> None:
    try:
        if hub.stopping:
            return
        stream = client.run(
            config,
            stream=True,
            timeout=hub.batch.remaining(),
            cancel=hub.batch.token,
            cancel_task_on_abort=cancel_task_on_abort,
        )
        if not hub.register(index, stream):
            return
        try:
            for update in stream:
                if not hub.channel.put((_UPDATE, index, update)):
                    break  # the consumer left
        finally:
            hub.unregister(index)
            stream.close()
    except Exception as exc:
        # Ahead of the updates still queued: a timeout, cancel or error reaches the consumer at once.
        hub.channel.put((_FAILED, index, hub.batch.translate(exc)), bounded=False, first=True)
    finally:
        hub.channel.put((_FINISHED, index, None), bounded=False)


def stream_many(
    client: Client,
    configs: Iterable[Mapping[str, Any]],
    *,
    max_workers: Optional[int] = None,
    timeout: Optional[float] = None,
    cancel: Optional[CancelToken] = None,
    cancel_task_on_abort: bool = False,
) -> MergedStream:
    """``Client.stream_many``: every config as ``client.run(config, stream=True)`` would, merged."""
    listed = _check_configs(configs)
    if max_workers is not None:
        _check_workers(max_workers)
    _check_abort_args(timeout, cancel)
    workers = min(max_workers or DEFAULT_STREAM_WORKERS, max(1, len(listed)))
    hub = _Hub(_Batch(time.monotonic(), timeout, cancel), QUEUED_PER_STREAM * workers)
    return MergedStream(_merge(client, listed, workers, hub, cancel_task_on_abort), hub.wake, hub.batch.close)


def _merge(
    client: Client, configs: list[Mapping[str, Any]], workers: int, hub: _Hub, cancel_task_on_abort: bool
) -> Generator[tuple[int, TaskUpdate], None, None]:
    if not configs:
        hub.batch.close()
        return
    grow_pool(client, workers)
    executor = ThreadPoolExecutor(workers, thread_name_prefix="inferencesh-stream")
    quietly = True
    try:
        for index, config in enumerate(configs):
            executor.submit(_follow, client, hub, index, config, cancel_task_on_abort)
        pending = len(configs)
        while pending:
            kind, index, item = hub.channel.get()
            if kind == _UPDATE:
                yield index, item
            elif kind == _FINISHED:
                pending -= 1
            elif kind == CLOSED:
                return  # close() from another thread
            else:
                quietly = False
                raise item
    except GeneratorExit:
        raise
    except BaseException:
        quietly = False
        raise
    finally:
        hub.stop(quietly)
        hub.channel.close()  # readers waiting to hand over an update stop
        executor.shutdown(wait=True, cancel_futures=True)
        hub.batch.close()


class ManyMixin:
    """``Client.run_many`` and ``Client.stream_many`` (kept here so ``client.py`` stays small)."""

    @overload
    def run_many(
        self,
        configs: Iterable[Mapping[str, Any]],
        *,
        max_workers: int = ...,
        timeout: Optional[float] = ...,
        cancel: Optional[CancelToken] = ...,
        return_exceptions: Literal[False] = ...,
        cancel_task_on_abort: bool = ...,
    ) -> list[Task]: ...

    @overload
    def run_many(
        self,
        configs: Iterable[Mapping[str, Any]],
        *,
        max_workers: int = ...,
        timeout: Optional[float] = ...,
        cancel: Optional[CancelToken] = ...,
        return_exceptions: Literal[True],
        cancel_task_on_abort: bool = ...,
    ) -> list[Union[Task, Exception]]: ...

    def run_many(
        self,
        configs: Iterable[Mapping[str, Any]],
        *,
        max_workers: int = 8,
        timeout: Optional[float] = None,
        cancel: Optional[CancelToken] = None,
        return_exceptions: bool = False,
        cancel_task_on_abort: bool = False,
    ) -> Union[list[Task], list[Union[Task, Exception]]]:
        """Run many configs, ``max_workers`` at a time; returns their ``Task`` objects in input order.

        A failure does not hide the others: with ``return_exceptions=True`` its
        exception (``TaskFailed``, ``APIError``, ``StreamTimeout``...) takes
        the task's place; without it the first failure is raised (its message
        and its ``index`` and ``app`` attributes name the config) after the
        other runs were cancelled locally (their tasks keep running on the
        server unless ``cancel_task_on_abort``). ``timeout`` (seconds from this
        call: ``StreamTimeout``) and ``cancel`` (``Cancelled``) cover the whole
        batch. The connection pool grows to ``max_workers`` if smaller.
        Raises ``UsageError`` for a bad config before anything is sent.
        """
        return run_many(
            self._client(),
            configs,
            max_workers=max_workers,
            timeout=timeout,
            cancel=cancel,
            return_exceptions=return_exceptions,
            cancel_task_on_abort=cancel_task_on_abort,
        )

    def stream_many(
        self,
        configs: Iterable[Mapping[str, Any]],
        *,
        max_workers: Optional[int] = None,
        timeout: Optional[float] = None,
        cancel: Optional[CancelToken] = None,
        cancel_task_on_abort: bool = False,
    ) -> MergedStream:
        """Stream many configs at once; yields ``(index, TaskUpdate)`` merged in arrival order.

        ``index`` is the config's position; the loop ends when every stream
        reached its terminal update (a failed task is an update, not an
        error). Tasks start when the iteration starts, ``max_workers`` (default
        all, up to 256) streams at a time; the connection pool grows to that.
        One deadline (``timeout``, seconds from this call: ``StreamTimeout``)
        and one ``cancel`` token (``Cancelled``) for all; the first error of
        any stream (``APIError``, ``ConnectionLost``...) is raised from the
        loop. Leaving the loop early (``break``, an exception, ``close()``)
        closes every stream and joins every thread at once, even while the
        result is still referenced; the tasks keep running on the server,
        except after an error, timeout, cancel or Ctrl-C with
        ``cancel_task_on_abort=True``. A slow consumer slows the readers down
        (a few updates per stream are queued), so memory stays flat.
        ``UsageError`` for a bad config at once.
        """
        return stream_many(
            self._client(),
            configs,
            max_workers=max_workers,
            timeout=timeout,
            cancel=cancel,
            cancel_task_on_abort=cancel_task_on_abort,
        )

    def _client(self) -> Client:
        from .client import Client

        assert isinstance(self, Client)
        return self
