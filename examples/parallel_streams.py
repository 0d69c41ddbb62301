"""Several streams at once on one client (the seed's Promise.all pattern), with stream_many and run_many.

``threaded_streams.py`` does the same with a thread pool by hand; here the
client does it: one deadline and one cancel token for all, every stream
closed if the loop is left early.
"""

from __future__ import annotations

from _connect import connect

PROMPTS = ["A red fox", "A blue whale", "A green parrot"]

with connect() as client:
    configs = [{"app": "infsh/flux-schnell", "input": {"prompt": prompt}} for prompt in PROMPTS]

    # Every update of every task, merged in the order they arrive.
    counts = [0] * len(PROMPTS)
    for index, update in client.stream_many(configs, timeout=300):
        counts[index] += 1
        if update.is_terminal:
            print(f"{PROMPTS[index]}: {update.status} after {counts[index]} updates")

    # Or only the results, in input order; a failure takes its task's place instead of hiding the others.
    results = client.run_many([*configs, {"app": "infsh/fail", "input": {}}], return_exceptions=True)
    for name, result in zip([*PROMPTS, "a failing app"], results):
        if isinstance(result, Exception):
            print(f"{name}: {type(result).__name__}: {result}")
        else:
            print(f"{name}: {result.status}, image at {result.output['image']}")
