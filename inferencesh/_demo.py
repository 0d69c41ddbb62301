"""``infsh demo``: stream a real task from the embedded local server, end to end.

It starts ``LocalServer`` on a free loopback port, runs ``infsh/flux-schnell``
through the public client with ``stream=True``, shows each status change, the
log lines and a live progress bar as they arrive, then downloads the PNG the
task produced (its output is the image's URL on the local server, as the
hosted service answers) with ``inferencesh.download`` and prints its path. ``--flaky`` injects connection drops (a clean
close, a reset and a cut in the middle of an event) and the screen says when
the client reconnects; the PNG is the same.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Optional, TextIO

from tqdm import tqdm

from .client import inference
from .files import download
from .models import TaskStatus

FLAKY_FAULTS: list[dict[str, Any]] = [
    {"kind": "close", "after": 4},
    {"kind": "reset", "after": 3},
    {"kind": "cut", "after": 3},
]


class _TqdmHandler(logging.Handler):
    """Shows the SDK's reconnect messages above the bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(f"  ↻ {record.getMessage()}", file=sys.stderr)


def run_demo(
    prompt: str = "A sunset timelapse over the sea",
    out: Optional[str] = None,
    *,
    flaky: bool = False,
    speed: float = 1.0,
    stream: TextIO = sys.stdout,
    dialect: str = "hosted",
) -> Path:
    """Run the demo; returns the path of the PNG written (``out`` or ``./infsh-demo.png``).

    ``dialect`` is the wire dialect the embedded server speaks ("hosted" or "v1").
    """
    from .server import LocalServer

    target = Path(out or "infsh-demo.png").resolve()
    handler = _TqdmHandler(logging.INFO)
    logger = logging.getLogger("inferencesh.stream")
    logger.addHandler(handler)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with LocalServer(speed=speed, retry_ms=200, dialect=dialect) as server:
            print(f"Local server at {server.url}", file=stream)
            client = inference(api_key="demo", base_url=server.url, backoff_initial=0.1)
            task_input: dict[str, Any] = {"prompt": prompt}
            if flaky:
                task_input["_faults"] = FLAKY_FAULTS
            config = {"app": "infsh/flux-schnell", "input": task_input}
            with client, client.run(config, stream=True, timeout=120) as updates:
                print(f"Task {updates.task_id}: {config['app']} {prompt!r}", file=stream)
                bar = tqdm(total=None, unit="step", file=sys.stderr, dynamic_ncols=True, disable=None)
                status: Optional[TaskStatus] = None
                try:
                    for update in updates:
                        if update.status != status:
                            status = update.status
                            bar.write(f"Status: {status}", file=stream)
                        for line in update.logs:
                            bar.write(f"  {line}", file=stream)
                        if update.progress is not None:
                            if bar.total != update.progress.total:
                                bar.reset(total=update.progress.total)
                            bar.n = update.progress.current
                            bar.set_description_str(str(update.status))
                            bar.refresh()
                finally:
                    bar.close()
                result = updates.result
            if result is None or result.status is not TaskStatus.COMPLETED:
                error = result.error if result is not None else "stream ended early"
                raise SystemExit(f"task did not complete: {error}")
            download(result.output["image"], target)
            print(f"Done in {updates.duration:.1f} s; image saved to {target}", file=stream)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
    return target
