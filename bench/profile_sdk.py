"""Where the SDK's time goes on the throughput path: cProfile, grouped by component.

Reads the pre-recorded body once under cProfile (close-delimited, then
chunked) and sums each function's own time (``tottime``) into the parts of
the update path, from socket bytes to the caller's loop. cProfile inflates
the cost of many small calls, so the shares, not the absolute times, are the
point; ``top`` lists the costliest functions.
"""

from __future__ import annotations

import cProfile
import pstats
from typing import Any

from bench._recorded import RawServer
from bench.throughput import read_sdk

# (component, substrings of the code's file path or name), first match wins
COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    ("sseclient-py field parser", ("sseclient",)),
    ("SSE framing (_sse.py)", ("inferencesh/_sse.py",)),
    ("TaskUpdate building (models.py)", ("inferencesh/models.py", "attrs generated", "<attrs")),
    ("json decoding", ("json/", "_json")),
    ("resume loop (_resume.py)", ("inferencesh/_resume.py",)),
    ("TaskStream bookkeeping (_stream.py)", ("inferencesh/_stream.py",)),
    ("HTTP read (urllib3, http.client, socket)", ("urllib3", "http/client", "socket", "recv", "read1", "readinto")),
]


def _component(filename: str, name: str) -> str:
    where = f"{filename}:{name}"
    for component, needles in COMPONENTS:
        if any(needle in where for needle in needles):
            return component
    return "other (the caller's loop, logging, generator hand-offs)"


def profile(events: int = 100_000, framing: str = "close", top: int = 12) -> dict[str, Any]:
    with RawServer("recorded", events=events, framing=framing) as server:
        read_sdk(server.url)  # warm-up
        profiler = cProfile.Profile()
        profiler.enable()
        read_sdk(server.url)
        profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    shares: dict[str, float] = {}
    rows = []
    total = 0.0
    for (filename, line, name), (_, calls, tottime, _, callers) in raw.items():
        total += tottime
        if filename == "~" and callers:
            # A builtin (str.split, next, bytes.decode...): its time goes to whoever called it.
            for (caller_file, _, caller_name), caller_stats in callers.items():
                component = _component(caller_file, caller_name)
                shares[component] = shares.get(component, 0.0) + caller_stats[2]
        else:
            component = _component(filename, name)
            shares[component] = shares.get(component, 0.0) + tottime
        rows.append((tottime, calls, f"{filename.split('site-packages/')[-1].split('/work/main/')[-1]}:{line}({name})"))
    rows.sort(reverse=True)
    return {
        "framing": framing,
        "events": events,
        "profiled_seconds": total,
        "shares": {k: v / total for k, v in sorted(shares.items(), key=lambda kv: -kv[1])},
        "top": [{"tottime_s": t, "calls": c, "function": f} for t, c, f in rows[:top]],
    }


def stages(events: int = 100_000, repeat: int = 3) -> dict[str, float]:
    """Microseconds per update of the path built up stage by stage, in memory (no socket, no profiler).

    The body is cut into 64 KiB reads as ``raw.read1`` would give them; each
    figure is the best of ``repeat`` and includes the stages before it.
    """
    import json
    import time

    from bench._recorded import recorded_events
    from inferencesh._sse import SSEDecoder
    from inferencesh._stream import _loads, parse_update

    body = b"".join(recorded_events(events))
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]

    def split() -> None:
        for _ in SSEDecoder()._blocks(iter(chunks)):
            pass

    def decode() -> None:
        for _ in SSEDecoder().iter_events(iter(chunks)):
            pass

    def decode_json() -> None:
        for event in SSEDecoder().iter_events(iter(chunks)):
            _loads(event.data)

    def decode_model() -> None:
        for event in SSEDecoder().iter_events(iter(chunks)):
            parse_update(event, int(event.id))

    def floor() -> None:
        for block in body.split(b"\n\n"):
            start = block.find(b"data: ")
            if start >= 0:
                json.loads(block[start + 6 :])

    out: dict[str, float] = {}
    for name, step in (
        ("floor in memory: split + json.loads", floor),
        ("_sse.py framing: line ends, blocks, cap", split),
        ("+ sseclient-py field parsing, ServerSentEvent", decode),
        ("+ JSON decoding", decode_json),
        ("+ TaskUpdate (models.py)", decode_model),
    ):
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - started)
        out[name] = best / events * 1e6
    return out


if __name__ == "__main__":
    for name, micros in stages().items():
        print(f"  {micros:6.2f} us/update  {name}")
    for framing in ("close", "chunked"):
        result = profile(framing=framing)
        print(f"\n{framing}: {result['profiled_seconds']:.2f} s under cProfile")
        for component, share in result["shares"].items():
            print(f"  {share * 100:5.1f} %  {component}")
        for row in result["top"]:
            print(f"  {row['tottime_s']:.3f} s {row['calls']:>8}  {row['function']}")
