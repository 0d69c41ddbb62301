"""A stream processor that times the task and reports its outcome (the seed's processor with duration)."""

from __future__ import annotations

from _connect import connect

from inferencesh import TaskStream


def process(stream: TaskStream) -> dict[str, object]:
    statuses: list[str] = []
    for update in stream:
        if not statuses or statuses[-1] != update.status:
            statuses.append(str(update.status))
    result = stream.result
    return {
        "task_id": stream.task_id,
        "statuses": statuses,
        "final": str(result.status) if result else None,
        "log_lines": len(stream.logs),
        "duration_s": round(stream.duration or 0.0, 3),
    }


with connect() as client:
    report = process(client.run({"app": "infsh/flux-schnell", "input": {"prompt": "A forest"}}, stream=True))
    for key, value in report.items():
        print(f"{key}: {value}")
