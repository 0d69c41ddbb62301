"""Live progress for people: a tqdm bar that follows a ``TaskStream``.

``client.run(config, progress=True)`` (blocking or ``stream=True``) draws one
bar per task with ``tqdm.auto``: a widget in Jupyter, text on stderr in a
terminal. The bar's description is the status, its count
``progress.current`` of ``progress.total``, and the task's log lines are
written above it (``tqdm.write``). The bar is closed on completion, failure,
timeout, cancel and Ctrl-C alike; after an abort its description says why
(``timeout``, ``cancelled``, ``interrupted``, ``error``).

``progress=True`` draws only when someone can see it: in a Jupyter kernel,
or when stderr is a terminal. ``progress="always"`` draws anyway (a log file,
CI). ``follow(stream, force=True, file=f)`` draws on any text file ``f``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any, Optional, TextIO

from ._errors import Cancelled, StreamTimeout, UsageError
from ._stream import TaskStream
from .models import TaskUpdate

__all__ = ["follow", "progress_bar"]

_SPINNER = "|/-\\"


def _force_for(progress: Any) -> Optional[bool]:
    """``progress=`` → ``follow``'s ``force`` (None: when visible). ``UsageError`` for other values."""
    if progress is True:
        return None
    if progress == "always" and isinstance(progress, str):
        return True
    if progress is False:
        return False
    raise UsageError(f'progress must be True, False or "always", not {progress!r}')


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython with a kernel app), where tqdm.auto draws a widget."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if get_ipython is not None else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _visible(file: Optional[TextIO]) -> bool:
    if file is None and _in_notebook():
        return True
    isatty = getattr(file if file is not None else sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed file
        return False


def _abort_reason(error: BaseException) -> str:
    """A word for the bar's last description after ``error`` ended the stream."""
    if isinstance(error, StreamTimeout):
        return "timeout"
    if isinstance(error, Cancelled):
        return "cancelled"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    return "error"


class _Bar:
    """One tqdm bar for one task, made on the first update; a no-op when not ``enabled``.

    ``file`` is where the bar and ``write``'s lines go (default: stderr, or
    the notebook for the widget and stdout for lines).
    """

    def __init__(self, *, enabled: bool, file: Optional[TextIO] = None) -> None:
        self.enabled = enabled
        self._file = file
        self._bar: Any = None
        self._turn = 0

    def _lines_file(self) -> TextIO:
        if self._file is not None:
            return self._file
        return sys.stdout if _in_notebook() else sys.stderr

    def write(self, line: str) -> None:
        """Print ``line`` above the bar (or plainly, when there is no bar yet)."""
        if not self.enabled:
            return
        if self._bar is None:
            print(line, file=self._lines_file(), flush=True)
            return
        from tqdm.auto import tqdm

        tqdm.write(line, file=self._lines_file())

    def draw(self, update: TaskUpdate) -> None:
        """Show ``update``'s status as the description and its progress as the count."""
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm.auto import tqdm

            # No count known (yet): a status spinner, not tqdm's "0step [00:00, ?step/s]".
            spinner = None if update.progress is not None else self._spinner()
            self._bar = tqdm(total=None, unit="step", leave=True, file=self._file or sys.stderr, bar_format=spinner)
        bar = self._bar
        if update.progress is not None:
            if bar.total != update.progress.total:
                bar.reset(total=update.progress.total)
                bar.bar_format = None  # tqdm's own bar from now on
            bar.n = update.progress.current
        elif bar.total is None:
            bar.bar_format = self._spinner()
        bar.set_description_str(str(update.status), refresh=False)
        bar.refresh()

    def _spinner(self) -> str:
        self._turn += 1
        return "{desc}: " + _SPINNER[self._turn % len(_SPINNER)] + " [{elapsed}]"

    def close(self, reason: Optional[str] = None) -> None:
        """Close the bar (idempotent); ``reason`` replaces the description first."""
        bar, self._bar = self._bar, None
        if bar is None:
            return
        if reason is not None:
            bar.set_description_str(reason, refresh=False)
        bar.close()


class _BarWatcher:
    """Draws each update of one stream on a ``_Bar``, and closes it however the stream ends."""

    def __init__(self, bar: _Bar) -> None:
        self.bar = bar

    def seen(self, update: TaskUpdate) -> None:
        for line in update.logs:
            self.bar.write(line)
        self.bar.draw(update)
        if update.is_terminal:
            self.bar.close()

    def ended(self, error: Optional[BaseException]) -> None:
        self.bar.close(None if error is None else _abort_reason(error))


def follow(stream: TaskStream, *, force: Optional[bool] = None, file: Optional[TextIO] = None) -> TaskStream:
    """Make iterating ``stream`` draw a live bar; returns ``stream`` itself.

    The bar is drawn while the stream is iterated (by your ``for`` loop, or
    by ``client.run(..., progress=True)``), one step per update: nothing
    draws between updates or before the loop starts. A task that reports no
    progress shows its status with a spinner instead of a count.
    ``force=True`` draws even when nobody sees it (not a terminal),
    ``force=False`` never draws; by default (None) a bar is drawn in a Jupyter
    kernel or when ``file`` (default stderr) is a terminal. ``file`` is a text
    file for the bar and the log lines.
    """
    stream._watch(_BarWatcher(_Bar(enabled=_visible(file) if force is None else force, file=file)))
    return stream


def progress_bar(
    stream: TaskStream, *, force: Optional[bool] = None, file: Optional[TextIO] = None
) -> Iterator[TaskUpdate]:
    """Iterate ``stream`` with a live bar (a generator form of ``follow``)."""
    with follow(stream, force=force, file=file) as followed:
        yield from followed
