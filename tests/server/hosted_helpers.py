"""Raw readers for the hosted dialect (HOSTED.md): envelopes, NDJSON and data-only SSE.

Plain ``requests`` only, like ``helpers``: the server is checked against the
wire description, not against any client.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import requests

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
HEARTBEAT = {"type": "heartbeat"}
DTO_KEYS = {
    "id",
    "status",
    "app_id",
    "input",
    "output",
    "error",
    "session_id",
    "created_at",
    "updated_at",
    "events",
    "logs",
}
RESULT_KEYS = {"id", "short_id", "status", "status_text", "output", "error", "session_id", "created_at", "updated_at"}
TERMINAL = {10, 11, 12, 13}


def poll(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Call ``predicate`` until it returns something truthy (returned) or ``timeout`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def legacy(answer: requests.Response, status: int = 200) -> Any:
    """The ``data`` of a legacy envelope, checking the envelope."""
    assert answer.status_code == status, (answer.status_code, answer.text)
    body = answer.json()
    assert set(body) == {"success", "status", "data"} and body["success"] is True and body["status"] == status
    return body["data"]


def run(base: str, app: str, data: dict[str, Any], headers: Optional[dict[str, str]] = None, **extra: Any) -> Any:
    """POST /apps/run (legacy envelope) and return the task result."""
    answer = requests.post(f"{base}/apps/run", json={"app": app, "input": data, **extra}, headers=headers, timeout=30)
    result = legacy(answer)
    assert set(result) == RESULT_KEYS
    return result


def get_task(base: str, task_id: str) -> Any:
    return legacy(requests.get(f"{base}/tasks/{task_id}", timeout=10))


def wait_terminal(base: str, task_id: str) -> Any:
    return poll(lambda: (task := get_task(base, task_id))["status"] in TERMINAL and task)


@dataclass
class Read:
    """What one stream request got: parsed objects (heartbeats included) and how it ended."""

    status: int
    content_type: str
    objects: list[Any] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    events: list[Optional[str]] = field(default_factory=list)  # SSE event names (None: unnamed)
    raw: bytes = b""
    bad_lines: list[bytes] = field(default_factory=list)
    error: Optional[BaseException] = None
    times: list[float] = field(default_factory=list)

    @property
    def data(self) -> list[Any]:
        """The objects that are not heartbeats."""
        return [obj for obj in self.objects if obj != HEARTBEAT]

    @property
    def heartbeats(self) -> int:
        return sum(1 for obj in self.objects if obj == HEARTBEAT) + len(self.comments)


def read(
    base: str,
    path: str,
    accept: str = NDJSON,
    *,
    stop: Optional[Callable[[Read], bool]] = None,
    timeout: float = 10.0,
    headers: Optional[dict[str, str]] = None,
) -> Read:
    """GET a stream and parse it as NDJSON or SSE (by the answer's Content-Type) until it ends or ``stop`` says so."""
    answer = requests.get(f"{base}{path}", headers={"Accept": accept, **(headers or {})}, stream=True, timeout=timeout)
    result = Read(answer.status_code, answer.headers.get("content-type", ""))
    buffer = b""
    try:
        if answer.status_code != 200:
            result.raw = answer.content
            return result
        sse = result.content_type.startswith(SSE)
        for chunk in answer.iter_content(chunk_size=None):
            result.raw += chunk
            buffer += chunk
            separator = b"\n\n" if sse else b"\n"
            while separator in buffer:
                unit, buffer = buffer.split(separator, 1)
                (_sse_block if sse else _ndjson_line)(result, unit)
                result.times.append(time.monotonic())
            if stop is not None and stop(result):
                break
    except (requests.RequestException, OSError) as exc:
        result.error = exc
    finally:
        answer.close()
    return result


def _ndjson_line(result: Read, line: bytes) -> None:
    try:
        result.objects.append(json.loads(line))
    except ValueError:
        result.bad_lines.append(line)


def _sse_block(result: Read, block: bytes) -> None:
    lines = block.decode("utf-8").split("\n")
    if len(lines) == 1 and lines[0].startswith(":"):
        result.comments.append(lines[0][1:].strip())
        return
    name = None
    if lines[0].startswith("event: "):
        name = lines.pop(0)[len("event: ") :]
    assert len(lines) == 1 and lines[0].startswith("data: "), lines
    assert not any(line.startswith("id:") for line in lines)
    try:
        result.objects.append(json.loads(lines[0][len("data: ") :]))
        result.events.append(name)
    except ValueError:
        result.bad_lines.append(block)


def statuses(objects: list[Any]) -> list[int]:
    """The status of each task object (whole or partial) in order."""
    out = []
    for obj in objects:
        if "fields" in obj:
            out.append(obj["data"]["status"])
        elif "event" not in obj:
            out.append(obj["status"])
    return out
