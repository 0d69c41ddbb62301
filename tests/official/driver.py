"""Scenarios run by the official ``inferencesh`` 0.36 SDK, in its own venv (see ``conftest``).

``python driver.py <scenario> <base_url>`` prints one JSON line: what the SDK
handed back, for the test to check. Only the official SDK's public calls.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable

from inferencesh import inference  # the official SDK: this file never runs with the repo on sys.path

FLUX = {"app": "infsh/flux-schnell@abc1", "input": {"prompt": "a calm lake at dawn", "steps": 6}}


def run_and_wait(client: Any) -> Any:
    result = client.run(FLUX)
    return {"status": result["status"], "id": result["id"], "image": str(result["output"]["image"])}


def stream(client: Any) -> Any:
    updates = []
    for update in client.run(FLUX, stream=True):
        updates.append({"status": update.get("status"), "logs": update.get("logs"), "output": update.get("output")})
    last = updates[-1]
    return {
        "statuses": [u["status"] for u in updates],
        "logs": [record["content"] for u in updates for record in (u["logs"] or [])],
        "final_logs": [record["content"] for record in (last["logs"] or [])],
        "image": str((last["output"] or {}).get("image", "")),
    }


def cancel(client: Any) -> Any:
    task = client.run({"app": "infsh/sleep@1", "input": {"seconds": 600}}, wait=False)
    client.tasks.cancel(task["id"])
    try:
        client.wait_for_completion(task["id"])
        error = None
    except RuntimeError as exc:
        error = str(exc)
    final = client.tasks.get(task["id"]).data
    return {"error": error, "status": final["status"], "events": [e["status"] for e in final["events"]]}


def agent(client: Any) -> Any:
    chat = client.agent("infsh/assistant@latest")
    calls: list[dict[str, Any]] = []
    deltas: list[str] = []

    def on_tool_call(call: Any) -> None:
        calls.append({"id": call.id, "name": call.name, "args": call.args})
        chat.submit_tool_result(call.id, "sunny and 21 °C")

    messages: list[dict[str, Any]] = []
    sent = chat.send_message(
        "What is the weather in Paris?",
        on_message=messages.append,
        on_tool_call=on_tool_call,
        on_delta=lambda delta: deltas.append(delta.output.get("response", "")),
    )
    final = chat.get_chat()
    assistant = [m for m in final["chat_messages"] if m["id"] == sent["id"]][-1]
    chat.stop_chat()  # answered with the legacy envelope, or the SDK raises
    return {
        "chat_id": chat.chat_id,
        "sent_status": sent["status"],
        "calls": calls,
        "last_delta": deltas[-1] if deltas else None,
        "message_statuses": [m["status"] for m in messages if m["id"] == sent["id"]],
        "text": "".join(p.get("text") or "" for p in assistant["content"] if p["type"] == "text"),
        "state": final["active_run"]["state"],
    }


def _png(width: int, height: int) -> bytes:
    """A tiny PNG made without Pillow (the official SDK's venv has none): one grey row per line."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def upload(client: Any) -> Any:
    """``upload_file`` of bytes, then of a path; each ``uri`` is a file ``infsh/image-info`` reads."""
    from inferencesh import UploadFileOptions

    given = client.upload_file(_png(21, 8), UploadFileOptions(filename="grey.png", content_type="image/png"))
    info = client.run({"app": "infsh/image-info@1", "input": {"image": given["uri"]}})["output"]
    path = "from-disk.png"
    with open(path, "wb") as out:
        out.write(_png(3, 4))
    from_path = client.upload_file(path)
    # Its run() uploads an input string that names an existing file, and sends the uri instead.
    auto = client.run({"app": "infsh/image-info@1", "input": {"image": path}})
    return {
        "uploaded": {k: given.get(k) for k in ("uri", "filename", "content_type", "size")},
        "info": info,
        "from_path": {k: from_path.get(k) for k in ("filename", "content_type", "size")},
        "auto_input": auto["input"]["image"] if auto.get("input") else None,
        "auto": auto["output"],
    }


SCENARIOS: dict[str, Callable[[Any], Any]] = {
    "run": run_and_wait,
    "stream": stream,
    "cancel": cancel,
    "agent": agent,
    "upload": upload,
}


def main() -> None:
    scenario, base_url = sys.argv[1], sys.argv[2]
    client = inference(api_key="inf_official_test", base_url=base_url)
    started = time.monotonic()
    result = SCENARIOS[scenario](client)
    result["seconds"] = round(time.monotonic() - started, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
