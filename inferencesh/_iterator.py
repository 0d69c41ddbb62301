"""What users iterate: ``FeedIterator``, the base of ``TaskStream`` and ``AgentStream``.

It wraps a ``_resume.follow`` generator over a ``Feed``: iterated once,
a context manager, and released at once however the caller leaves (the end,
``break``, an exception in the loop body, ``close()`` from any thread, the
end of a ``with`` block, garbage collection). ``Watcher`` objects (the
progress bar) see each item and how the stream ended.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any, Callable, Generic, Optional, Protocol, TypeVar

from ._resume import Feed
from ._watchdog import CLOSE

if TYPE_CHECKING:
    from types import TracebackType

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)
FI = TypeVar("FI", bound="FeedIterator[Any]")


def once(action: Callable[[], None]) -> Callable[[], None]:
    """``action`` that runs the first time it is called only (an abort hook reached two ways)."""
    first = threading.Lock()

    def run() -> None:
        if first.acquire(blocking=False):
            action()

    return run


class Watcher(Protocol[T_contra]):
    """Something that sees each item a stream hands out and how the stream ended (a progress bar)."""

    def seen(self, item: T_contra) -> None: ...

    def ended(self, error: Optional[BaseException]) -> None: ...


class FeedIterator(Generic[T]):
    """What users iterate: a ``follow`` generator over a ``Feed``, iterated once.

    Also a context manager. ``close()`` (safe from any thread), leaving the
    ``with`` block and garbage collection release the connection at once,
    and so does breaking out of a ``for`` over a stream that nothing else
    holds. Subclasses keep their bookkeeping in ``_seen``.
    """

    def __init__(
        self, feed: Feed[T], gen: Generator[T, None, None], on_abort: Optional[Callable[[], None]] = None
    ) -> None:
        self._feed = feed
        self._gen: Optional[Generator[T, None, None]] = gen
        self._on_abort = on_abort
        self._watchers: list[Watcher[T]] = []

    def _seen(self, item: T) -> None:
        """Bookkeeping for each item, before the caller gets it."""

    def _watch(self, watcher: Watcher[T]) -> None:
        self._watchers.append(watcher)

    def _end(self, error: Optional[BaseException]) -> None:
        watchers, self._watchers = self._watchers, []
        for watcher in watchers:
            watcher.ended(error)

    def __iter__(self) -> Iterator[T]:
        # A fresh generator per loop: when a loop is left early (break, an exception in its
        # body) the loop drops it, and its finally releases the connection at once, even
        # while the caller still holds the stream.
        return self._loop()

    def _loop(self) -> Generator[T, None, None]:
        # ``__next__`` inlined: this runs once per update, so it is the SDK's hot path.
        gen = self._gen
        seen = self._seen
        try:
            while gen is not None and self._gen is gen:
                try:
                    item = next(gen)
                except StopIteration:
                    self._gen = None
                    self._end(None)
                    return
                except BaseException as exc:
                    self._gen = None
                    self._end(exc)
                    raise
                seen(item)
                for watcher in self._watchers:
                    watcher.seen(item)
                yield item
        finally:
            if self._gen is not None:
                self.close()

    def __next__(self) -> T:
        if self._gen is None:
            raise StopIteration
        try:
            item = next(self._gen)
        except StopIteration:
            self._gen = None
            self._end(None)
            raise
        except BaseException as exc:
            self._gen = None
            self._end(exc)
            raise
        self._seen(item)
        for watcher in self._watchers:
            watcher.seen(item)
        return item

    @property
    def last_event_id(self) -> Optional[int]:
        """The id of the last event delivered (to resume from later), or None."""
        return self._feed.last_event_id

    def close(self) -> None:
        """Stop reading and release the connection; what runs on the server keeps running.

        Safe from any thread: a read blocked in another thread returns at once
        and that loop ends without an error.
        """
        self._feed.scope.fire(CLOSE)
        gen, self._gen = self._gen, None
        if gen is not None:
            try:
                gen.close()
            except ValueError:
                pass  # running in another thread, which the fired scope has already woken
        self._feed.scope.close()
        self._end(None)

    def __enter__(self: FI) -> FI:
        return self

    def __exit__(
        self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        # Ctrl-C in the loop body, not in a read: the abort hook (cancel_task_on_abort) still runs.
        interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
        unfinished = not self._feed.done
        self.close()
        if interrupted and unfinished and self._on_abort is not None:
            self._on_abort()

    def __del__(self) -> None:
        gen = getattr(self, "_gen", None)
        if gen is not None:
            self._gen = None
            gen.close()
        feed = getattr(self, "_feed", None)
        if feed is not None:
            feed.scope.close()
        if getattr(self, "_watchers", None):
            self._end(None)
