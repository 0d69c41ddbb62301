"""What ``stream_many`` hands out: a bounded ``Channel`` from reader threads, a ``MergedStream``.

The channel holds a few updates per stream: a reader that finds it full waits
(and so stops reading its socket: TCP pushes back on the server), so memory
stays flat however slow the consumer. ``MergedStream`` is iterated once and,
like a single ``TaskStream``, closes everything at once when a ``for`` over
it is left early, even while the caller still holds it.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Generator, Iterator
from typing import Any, Callable, Optional

from .models import TaskUpdate

__all__ = ["CLOSED", "Channel", "Item", "MergedStream"]

#: What ``Channel.get`` returns once closed.
CLOSED = "closed"
#: (kind, index, payload)
Item = tuple[str, int, Any]


class Channel:
    """A bounded FIFO from the reader threads to the one consumer; ``put`` blocks while it is full."""

    def __init__(self, size: int) -> None:
        self._items: deque[Item] = deque()
        self._size = size
        self._lock = threading.Lock()
        self._not_full = threading.Condition(self._lock)
        self._not_empty = threading.Condition(self._lock)
        self._closed = False

    def put(self, item: Item, *, bounded: bool = True, first: bool = False) -> bool:
        """Queue ``item`` (at the front if ``first``); False once closed (the consumer left)."""
        with self._lock:
            while bounded and not self._closed and len(self._items) >= self._size:
                self._not_full.wait()
            if self._closed:
                return False
            if first:
                self._items.appendleft(item)
            else:
                self._items.append(item)
            self._not_empty.notify()
            return True

    def get(self) -> Item:
        """The next item, waiting for one; ``(CLOSED, -1, None)`` once closed."""
        with self._lock:
            while not self._items and not self._closed:
                self._not_empty.wait()
            if self._closed:
                return CLOSED, -1, None
            self._not_full.notify()
            return self._items.popleft()

    def close(self) -> None:
        """Drop what is queued and wake every waiter: readers stop, the consumer ends."""
        with self._lock:
            self._closed = True
            self._items.clear()
            self._not_full.notify_all()
            self._not_empty.notify_all()


class MergedStream:
    """What ``stream_many`` returns: ``(index, TaskUpdate)`` pairs in arrival order, iterated once.

    Leaving a ``for`` loop over it early (``break``, an exception in the loop
    body), ``close()`` (safe from any thread) and garbage collection close
    every stream and join every reader thread at once, even while the caller
    still holds it; the tasks keep running on the server.
    """

    def __init__(
        self, gen: Generator[tuple[int, TaskUpdate], None, None], wake: Callable[[], None], release: Callable[[], None]
    ) -> None:
        self._gen: Optional[Generator[tuple[int, TaskUpdate], None, None]] = gen
        self._wake = wake  # ends ``gen`` while it runs in another thread
        self._running = threading.RLock()
        self._release = release  # lets go of the caller's cancel token

    def __iter__(self) -> Iterator[tuple[int, TaskUpdate]]:
        # A fresh generator per loop: the loop drops it when left early, and its finally closes all.
        return self._loop()

    def _loop(self) -> Generator[tuple[int, TaskUpdate], None, None]:
        try:
            while True:
                try:
                    item = self.__next__()
                except StopIteration:
                    return
                yield item
        finally:
            self.close()

    def __next__(self) -> tuple[int, TaskUpdate]:
        with self._running:  # a close() from another thread waits for this, and this for it
            gen = self._gen
            if gen is None:
                raise StopIteration
            try:
                return next(gen)
            except BaseException:
                self._gen = None
                raise

    def close(self) -> None:
        """Close every stream and join every reader thread; the tasks keep running on the server.

        Safe from any thread: a loop blocked in another thread ends quietly.
        """
        if self._gen is not None:
            self._wake()  # a loop waiting for an update in another thread returns now
        with self._running:
            gen, self._gen = self._gen, None
            if gen is not None:
                try:
                    gen.close()  # its finally joins the readers
                except ValueError:  # pragma: no cover - closed from inside its own next()
                    pass
        self._release()

    def __del__(self) -> None:
        if getattr(self, "_gen", None) is not None:
            self.close()
