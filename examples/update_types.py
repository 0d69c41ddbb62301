"""Handling each kind of update: status, progress, logs, partial output, output, error."""

from __future__ import annotations

from _connect import connect

from inferencesh import TaskStatus

with connect() as client:
    for app, task_input in [("infsh/flux-schnell", {"prompt": "A lighthouse"}), ("infsh/fail", {"message": "no GPU"})]:
        print(f"== {app}")
        for update in client.run({"app": app, "input": task_input}, stream=True):
            if update.progress is not None:
                print(f"progress {update.progress.current}/{update.progress.total} ({update.progress.fraction:.0%})")
            for line in update.logs:
                print(f"log: {line}")
            if update.partial_output is not None:
                print(f"partial output at step {update.partial_output.get('step')}")
            if update.status is TaskStatus.COMPLETED:
                print("completed with keys:", sorted(update.output))
            elif update.status is TaskStatus.FAILED:
                print(f"failed: {update.error}")
            elif update.status is TaskStatus.CANCELLED:
                print("cancelled")
