"""Deadlines and cancellation that interrupt blocked reads.

A blocked ``recv`` on a silent server never looks at the clock, so checking a
deadline between updates is not enough. Each run or stream gets an ``_Abort``
scope. The connection it is using registers itself with the scope while a
request is under way (``_transport``), and when the scope fires, because its
deadline passed, its ``CancelToken`` was cancelled or ``close()`` was called
from another thread, it shuts the socket down: the blocked read returns at
once in the reading thread, which then raises ``StreamTimeout`` or
``Cancelled`` (or ends quietly after ``close()``).

Deadlines and ``cancel_after`` run on one watchdog thread for the whole
process, started on demand and gone again when no timer is pending; no thread
is created per stream or per update.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Callable, Optional

from ._errors import Cancelled, StreamTimeout, UsageError

__all__ = ["CancelToken"]

log = logging.getLogger("inferencesh")


class _Timer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        _WATCHDOG.wake()


class _Watchdog:
    """One thread that runs callbacks at monotonic times."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Timer]] = []
        self._seq = itertools.count()
        self._thread: Optional[threading.Thread] = None

    def schedule(self, delay: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(time.monotonic() + max(0.0, delay), callback)
        with self._cond:
            heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="inferencesh-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
        return timer

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._thread = None
                    return
                when, _, timer = self._heap[0]
                delay = when - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
            if not timer.cancelled:
                try:
                    timer.callback()
                except Exception:  # one bad callback must not stop every later deadline in the process
                    log.exception("watchdog callback failed")


_WATCHDOG = _Watchdog()


class CancelToken:
    """A cancel signal shared by any number of runs and streams (the seed's AbortController).

    Pass it as ``cancel=``; ``cancel()`` may be called from any thread, and
    every stream using the token raises ``inferencesh.Cancelled`` promptly,
    even while blocked on a silent server or waiting to reconnect.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()
        self._timer: Optional[_Timer] = None

    @property
    def cancelled(self) -> bool:
        """True once ``cancel()`` was called (or the ``cancel_after`` delay passed)."""
        return self._event.is_set()

    def cancel(self) -> None:
        """Cancel every run and stream using this token. Idempotent, thread-safe."""
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks = list(self._callbacks.values())
            self._callbacks.clear()
        for callback in callbacks:
            callback()

    def cancel_after(self, seconds: float) -> None:
        """Cancel after ``seconds`` (float, seconds from now); a later call replaces the earlier delay.

        Raises ``UsageError`` for a negative or non-numeric delay.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise UsageError(f"cancel_after needs a number of seconds >= 0, not {seconds!r}")
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = _WATCHDOG.schedule(float(seconds), self.cancel)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until cancelled or ``timeout`` seconds passed; True if cancelled."""
        return self._event.wait(timeout)

    def _subscribe(self, callback: Callable[[], None]) -> Optional[int]:
        with self._lock:
            if not self._event.is_set():
                key = next(self._ids)
                self._callbacks[key] = callback
                return key
        callback()
        return None

    def _unsubscribe(self, key: Optional[int]) -> None:
        if key is not None:
            with self._lock:
                self._callbacks.pop(key, None)

    def __repr__(self) -> str:
        return f"CancelToken(cancelled={self.cancelled})"


TIMEOUT = "timeout"
CANCEL = "cancel"
CLOSE = "close"

_local = threading.local()


class _Abort:
    """The abort scope of one run or stream: a deadline, a token, and the socket in use."""

    def __init__(self, timeout: Optional[float] = None, cancel: Optional[CancelToken] = None) -> None:
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0):
            raise UsageError(f"timeout must be a number of seconds >= 0 or None, not {timeout!r}")
        if cancel is not None and not isinstance(cancel, CancelToken):
            raise UsageError(f"cancel must be a CancelToken or None, not {type(cancel).__name__}")
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.reason: Optional[str] = None
        self.task_id: Optional[str] = None
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._conn: Any = None
        self._sock: Any = None
        self._timer = None if timeout is None else _WATCHDOG.schedule(timeout, lambda: self.fire(TIMEOUT))
        self._token = cancel
        self._token_key = None if cancel is None else cancel._subscribe(lambda: self.fire(CANCEL))

    def fire(self, reason: str) -> None:
        """Abort: remember why, wake sleepers and shut down the socket in use."""
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            conn, sock = self._conn, self._sock
        self._event.set()
        _shutdown(conn, sock)

    @property
    def fired(self) -> bool:
        return self.reason is not None

    @property
    def fired_event(self) -> threading.Event:
        """Set once the scope fired (for waits and retry policies that must stop then)."""
        return self._event

    def error(self) -> Exception:
        """The exception that tells the caller why the scope fired."""
        if self.reason == TIMEOUT:
            return StreamTimeout(self.timeout or 0.0, self.task_id)
        return Cancelled(self.task_id)

    def check(self) -> None:
        """Raise the scope's error if it fired for a timeout or a cancel."""
        if self.reason in (TIMEOUT, CANCEL):
            raise self.error()

    def remaining(self) -> Optional[float]:
        """Seconds left before the deadline (never negative), or None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, cut short by a timeout or cancel (then raise) or close (then return)."""
        if self._event.wait(seconds):
            self.check()

    def attach(self, conn: Any) -> None:
        # The socket is remembered too: http.client drops ``conn.sock`` as soon as an answer
        # says ``Connection: close`` (or has no length), handing the socket to the response,
        # and a stream read on it must still be woken.
        sock = getattr(conn, "sock", None)
        with self._lock:
            if sock is not None or conn is not self._conn:
                self._sock = sock
            self._conn = conn
            fired = self.reason is not None
        if fired:
            _shutdown(conn, sock)

    def detach(self) -> None:
        with self._lock:
            self._conn = None
            self._sock = None

    @contextmanager
    def bound(self) -> Iterator[None]:
        """While inside, connections used by this thread register with this scope."""
        previous = getattr(_local, "scope", None)
        _local.scope = self
        try:
            yield
        finally:
            _local.scope = previous

    def close(self) -> None:
        """Release the timer and the token subscription (does not fire)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._token is not None:
            self._token._unsubscribe(self._token_key)
            self._token_key = None
        self.detach()


def current_scope() -> Optional[_Abort]:
    """The scope bound to this thread, if any (used by the transport's connections)."""
    return getattr(_local, "scope", None)


def _shutdown(conn: Any, sock: Any = None) -> None:
    """Shut down the connection's socket and ``sock`` (the one it had when attached), if any."""
    current = getattr(conn, "sock", None)
    for target in (current, sock) if sock is not current else (current,):
        if target is None:
            continue
        # A socket already closed by the other side, or an SSL socket torn down, has nothing to wake.
        with suppress(OSError, ValueError):
            target.shutdown(socket.SHUT_RDWR)
