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
    return {"status": result["status"], "id": result["id"], "image": str(result["output"]["image"])[:22]}


def stream(client: Any) -> Any:
    updates = []
    for update in client.run(FLUX, stream=True):
        updates.append({"status": update.get("status"), "logs": update.get("logs"), "output": update.get("output")})
    last = updates[-1]
    return {
        "statuses": [u["status"] for u in updates],
        "logs": [record["content"] for u in updates for record in (u["logs"] or [])],
        "final_logs": [record["content"] for record in (last["logs"] or [])],
        "image": str((last["output"] or {}).get("image", ""))[:22],
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


SCENARIOS: dict[str, Callable[[Any], Any]] = {
    "run": run_and_wait,
    "stream": stream,
    "cancel": cancel,
    "agent": agent,
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
