"""Collecting every log line of a task while it streams."""

from __future__ import annotations

from _connect import connect

with connect() as client:
    config = {"app": "infsh/flux-schnell", "input": {"prompt": "A city at night"}}
    collected: list[str] = []
    with client.run(config, stream=True) as stream:
        for update in stream:
            collected.extend(update.logs)
    assert collected == stream.logs  # the stream keeps them too
    print(f"{len(collected)} log lines:")
    for line in collected:
        print(f"  {line}")
