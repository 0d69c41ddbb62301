"""Retry policies (tenacity) for single calls and for the reconnect step of streams.

A policy reads as one sentence: retry ``Retryable`` failures up to N
attempts, waiting max(the server's delay, exponential backoff with jitter),
sleeping on the caller's abort scope so that a timeout or a cancel cuts the
wait short (PROTOCOL.md: 408, 429, 5xx and network errors are retried,
``Retry-After`` and ``retry:`` honoured).
"""

from __future__ import annotations

import logging
from typing import Callable, Optional

import tenacity

from ._watchdog import _Abort

log = logging.getLogger("inferencesh.retry")


class Retryable(Exception):
    """Internal: a failure worth another attempt; ``error`` is what the caller gets if none is left."""

    def __init__(self, error: Exception, retry_after: Optional[float] = None, reason: str = "") -> None:
        super().__init__(reason or str(error))
        self.error = error
        self.retry_after = retry_after


class _BackoffWait(tenacity.wait.wait_base):
    """max(the server's delay — ``Retry-After`` or ``retry:`` — , exponential backoff with jitter), capped."""

    def __init__(
        self, backoff: tenacity.wait.wait_base, server_delay: Callable[[], Optional[float]], cap: float
    ) -> None:
        self.backoff = backoff
        self.server_delay = server_delay
        self.cap = cap

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        floor = self.server_delay() or 0.0
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, Retryable) and error.retry_after is not None:
            floor = max(floor, error.retry_after)
        return float(min(self.cap, max(floor, self.backoff(retry_state))))


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None else None
    wait = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
    log.warning("attempt %d failed (%s); next attempt in %.2f s", retry_state.attempt_number, error, wait)


def retry_policy(
    *,
    attempts: int,
    scope: _Abort,
    backoff_initial: float,
    backoff_max: float,
    max_retry_delay: float,
    server_delay: Callable[[], Optional[float]] = lambda: None,
    max_delay: Optional[float] = None,
) -> tenacity.Retrying:
    """Retry ``Retryable`` failures up to ``attempts`` attempts in all, waiting
    max(server delay, exponential backoff with jitter), sleeping on the scope so
    that a timeout or cancel cuts the wait short; with ``max_delay`` (seconds),
    no attempt starts after that long since the first."""
    # A scope that fired (timeout, cancel, close) ends the retries at once: no attempt after it.
    stop = tenacity.stop_after_attempt(attempts) | tenacity.stop_when_event_set(scope.fired_event)
    if max_delay is not None:
        stop = stop | tenacity.stop_before_delay(max_delay)
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(Retryable),
        stop=stop,
        wait=_BackoffWait(
            tenacity.wait_exponential(multiplier=backoff_initial, max=backoff_max)
            + tenacity.wait_random(0, backoff_initial),
            server_delay,
            max_retry_delay,
        ),
        sleep=scope.sleep,
        before_sleep=_log_retry,
        reraise=True,
    )
