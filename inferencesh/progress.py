"""Live progress for people: a tqdm bar that follows a ``TaskStream``.

``tqdm.auto`` picks a widget in Jupyter and text in a terminal. The bar's
description is the status, its count ``progress.current`` of
``progress.total``, and log lines are written above it (``tqdm.write``). The
bar is closed on completion, failure, timeout, cancel and Ctrl-C alike.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any, Optional

from ._stream import TaskStream
from .models import TaskUpdate

__all__ = ["follow", "progress_bar"]


def _wants_bar(force: Optional[bool]) -> bool:
    if force is not None:
        return force
    if "ipykernel" in sys.modules:
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


class _Followed(TaskStream):
    """A ``TaskStream`` that draws each update on a bar as it passes through."""

    def __init__(self, inner: TaskStream, force: Optional[bool]) -> None:
        super().__init__(*inner._take_over())
        self._bar: Any = None
        self._enabled = _wants_bar(force)

    def __next__(self) -> TaskUpdate:
        try:
            update = super().__next__()
        except BaseException:
            self._close_bar()
            raise
        self._draw(update)
        if update.is_terminal:
            self._close_bar()
        return update

    def _draw(self, update: TaskUpdate) -> None:
        if not self._enabled:
            return
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=None, unit="step", leave=True, file=sys.stderr)
        bar = self._bar
        for line in update.logs:
            bar.write(line, file=sys.stderr)
        if update.progress is not None:
            if bar.total != update.progress.total:
                bar.reset(total=update.progress.total)
            bar.n = update.progress.current
        bar.set_description_str(str(update.status), refresh=False)
        bar.refresh()

    def _close_bar(self) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.close()

    def close(self) -> None:
        self._close_bar()
        super().close()


def follow(stream: TaskStream, *, force: Optional[bool] = None) -> TaskStream:
    """Wrap ``stream`` so that iterating it draws a live bar; returns a ``TaskStream``.

    ``force=True`` draws even when stderr is not a terminal; ``force=False``
    never draws. By default a bar is drawn in a terminal or a Jupyter kernel.
    """
    return _Followed(stream, force)


def progress_bar(stream: TaskStream, *, force: Optional[bool] = None) -> Iterator[TaskUpdate]:
    """Iterate ``stream`` with a live bar (a generator form of ``follow``)."""
    yield from follow(stream, force=force)
