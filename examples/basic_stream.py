"""The seed's basic streaming example: print each status as it arrives."""

from __future__ import annotations

from _connect import connect

with connect() as client:
    config = {"app": "infsh/flux-schnell", "input": {"prompt": "A sunset timelapse"}}
    for update in client.run(config, stream=True):
        print(f"Status: {update.status}")
        if update.status == "completed":
            print(f"Output: {str(update.output)[:60]}...")
