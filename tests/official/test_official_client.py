"""The official Python SDK 0.36, unchanged, against ``infsh serve --dialect hosted``.

Where that SDK and HOSTED.md disagree, the SDK wins (the server follows it):

- ``POST /tasks/{id}/cancel``: HOSTED.md says "empty or the task"; the SDK
  reads any JSON, so the server answers the task (status 8, cancelling).
- ``run()`` without ``stream``: the SDK never sends ``"wait": true``; it
  streams (``GET /tasks/{id}``, then the NDJSON stream) and raises
  ``RuntimeError`` for a failed or cancelled task, so the server must end
  every stream with the terminal partial (``status``, and ``output`` or
  ``error``) — it does not merge partials.
- Chats: HOSTED.md says ``POST /tools/{id}`` and ``POST /chats/{id}/stop``
  answer "empty"; the SDK's agent calls need ``"success": true`` in a JSON
  body, so both answer the legacy envelope with a small object.
- Chat streams: HOSTED.md's Chat may lack ``active_run``; the SDK ends a turn
  at the first ``chats`` event whose ``active_run.state`` is not submitted or
  working, so every ``chats`` event carries ``active_run``, a tool waiting
  for its result keeps the run ``working`` (the chat is
  ``awaiting_input``), and the final message snapshot precedes the final
  ``chats`` event.
- Files: ``upload_file`` posts ``"filename": null`` for bytes without a
  name (the server names it ``file``) and ``PUT``s the bytes with
  ``requests.put`` (no key), so the upload target must take no key; its
  ``run()`` uploads an input string that names an existing file.
- ``send_message`` returns the assistant message as ``POST /agents/run``
  answered it (``pending``, no content), not the finished one; the finished
  text is read with ``get_chat()``.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import pytest

pytestmark = pytest.mark.slow

Drive = Callable[[str], Any]
TQDM = re.compile(r"\d+%\|[^|]*\| \d+/\d+ \[")


def test_run_waits_for_the_result(drive: Drive, hosted_url: str) -> None:
    got = drive("run")
    assert got["status"] == 10 and got["id"].startswith("tsk_")
    assert got["image"].startswith(hosted_url + "/files/") and got["image"].endswith(".png")


def test_stream_sees_statuses_in_order_and_logs(drive: Drive, hosted_url: str) -> None:
    got = drive("stream")
    statuses = got["statuses"]
    assert statuses == sorted(statuses) and statuses[-1] == 10
    assert {7, 9, 10} <= set(statuses)
    assert got["image"].startswith(hosted_url + "/files/")
    text = "".join(got["final_logs"])
    assert "simulated FLUX.1-schnell: no model is loaded" in text
    assert len(TQDM.findall(text)) == 6 and "100%|" in text


def test_cancel(drive: Drive) -> None:
    got = drive("cancel")
    assert got["error"] is not None and "cancel" in got["error"].lower()
    assert got["status"] == 12
    assert got["events"][-2:] == [8, 12]


def test_agent_turn_with_a_client_tool(drive: Drive) -> None:
    got = drive("agent")
    assert got["chat_id"] and got["sent_status"] == "pending"
    assert len(got["calls"]) == 1
    call = got["calls"][0]
    assert call["name"] == "get_weather" and call["args"] == {"city": "Paris"} and call["id"]
    assert got["text"] == "The weather in Paris is sunny and 21 °C."
    assert got["last_delta"] is not None and got["text"].endswith(got["last_delta"][-10:])
    assert got["message_statuses"][-1] == "ready"
    assert got["state"] == "completed"


def test_upload_file_and_the_auto_upload_of_run(drive: Drive, hosted_url: str) -> None:
    got = drive("upload")
    uploaded = got["uploaded"]
    assert uploaded["uri"].startswith(hosted_url + "/files/") and uploaded["uri"].endswith("/grey.png")
    assert (uploaded["filename"], uploaded["content_type"]) == ("grey.png", "image/png")
    assert got["info"] == {"width": 21, "height": 8, "format": "PNG"}
    assert got["from_path"]["filename"] == "from-disk.png" and got["from_path"]["content_type"] == "image/png"
    assert got["from_path"]["size"] > 0
    assert got["auto"] == {"width": 3, "height": 4, "format": "PNG"}
    assert got["auto_input"] is None or got["auto_input"].startswith(hosted_url + "/files/")
