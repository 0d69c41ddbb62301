"""A hand-made progress bar, as the seed draws one (see ``progress=True`` for the built-in tqdm bar)."""

from __future__ import annotations

import sys

from _connect import connect

WIDTH = 30

with connect() as client:
    config = {"app": "infsh/flux-schnell", "input": {"prompt": "Mountains at dawn", "steps": 10}}
    for update in client.run(config, stream=True):
        if update.progress is not None:
            done = int(update.progress.fraction * WIDTH)
            bar = "#" * done + "-" * (WIDTH - done)
            sys.stdout.write(f"\r[{bar}] {update.progress.current}/{update.progress.total} {update.status}")
            sys.stdout.flush()
        if update.is_terminal:
            sys.stdout.write(f"\n{update.status}\n")
