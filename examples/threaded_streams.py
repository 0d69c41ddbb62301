"""Several streams at once, one thread each, on one shared client (the seed's Promise.all pattern)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from _connect import connect

PROMPTS = ["A red fox", "A blue whale", "A green parrot"]

with connect() as client:

    def follow(prompt: str) -> tuple[str, str, int]:
        updates = list(client.run({"app": "infsh/flux-schnell", "input": {"prompt": prompt}}, stream=True))
        return prompt, str(updates[-1].status), len(updates)

    with ThreadPoolExecutor(max_workers=len(PROMPTS)) as pool:
        for prompt, status, count in pool.map(follow, PROMPTS):
            print(f"{prompt}: {status} after {count} updates")
