"""A numbered, append-only event log that many readers follow at once.

One log per stream (a task, or one turn of an agent chat). Events get ids
1, 2, 3, ... in append order; a reader asks for everything after an id it
already has (replay), then waits for more (live). The log is closed when its
producer is done, so readers know no further event will come.

Everything here runs on one asyncio event loop; nothing is thread-safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

T = TypeVar("T")


class EventLog(Generic[T]):
    """Events of one stream, numbered from 1, replayable and followable live.

    ``append`` adds an event and returns its id; ``since(n)`` lists the events
    with an id greater than ``n``; ``wait(n, timeout)`` sleeps until there is
    one, the log is closed, or ``wake()`` is called.
    """

    __slots__ = ("_changed", "_closed", "_items")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._closed = False
        self._changed: asyncio.Future[None] | None = None

    @property
    def last_id(self) -> int:
        """The id of the newest event, 0 when the log is empty."""
        return len(self._items)

    @property
    def closed(self) -> bool:
        """True once the producer said no event will follow."""
        return self._closed

    def append(self, item: T) -> int:
        """Add ``item`` as the next event and return its id (1-based).

        Raises ``RuntimeError`` when the log is already closed.
        """
        if self._closed:
            raise RuntimeError("event log is closed")
        self._items.append(item)
        self._notify()
        return len(self._items)

    def close(self) -> None:
        """Mark the log finished and wake every waiting reader. Idempotent."""
        if not self._closed:
            self._closed = True
            self._notify()

    def wake(self) -> None:
        """Wake every waiting reader without adding an event (e.g. on shutdown)."""
        self._notify()

    def get(self, event_id: int) -> T:
        """The event with id ``event_id``; ``IndexError`` when there is none."""
        if event_id < 1 or event_id > len(self._items):
            raise IndexError(event_id)
        return self._items[event_id - 1]

    def since(self, after: int, limit: int | None = None) -> list[tuple[int, T]]:
        """The events with an id greater than ``after``, as ``(id, item)`` in order.

        At most ``limit`` of them when given.
        """
        start = max(after, 0)
        stop = None if limit is None else start + limit
        return [(i + 1, item) for i, item in enumerate(self._items[start:stop], start)]

    async def wait(self, after: int, timeout: float | None = None) -> bool:
        """Wait until an event with id > ``after`` exists or the log is closed.

        Returns True when that is so, False when ``timeout`` seconds passed
        first or when ``wake()`` ended the wait early with nothing new.
        """
        if self._closed or len(self._items) > after:
            return True
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        # asyncio.wait, not wait_for: before Python 3.12, wait_for swallows a cancellation that
        # arrives while the awaited future completes, and a busy log completes it all the time, so
        # a reader whose client had left could not be cancelled until its log went quiet.
        await asyncio.wait((self._changed,), timeout=timeout)
        return self._closed or len(self._items) > after

    async def follow(self, after: int = 0) -> AsyncIterator[tuple[int, T]]:
        """Replay the events after ``after``, then yield new ones as they come.

        Ends when the log is closed and every event has been yielded.
        """
        position = after
        while True:
            for event_id, item in self.since(position):
                position = event_id
                yield event_id, item
            if self._closed:
                return
            await self.wait(position)

    def _notify(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = None
            if not changed.done():
                changed.set_result(None)
