"""Soak: N streamed tasks against one LocalServer, every one with injected faults, K at once.

    python bench/soak.py --tasks 10000 [--concurrency 24] [--seed 1] [--speed 20]

Each task draws one to three fault modes (seeded, so a run is repeatable)
from every mode the server has: a clean close, a reset, a mid-event cut, a
torn chunk, a stall past the client's idle limit (0.6 s against 2 × 0.2 s),
503 and 429 answers with ``Retry-After`` on the stream (LocalServer answers
the first stream requests of the task with them, so they meet the stream's
connect-and-retry step, and a drop fault adds a reconnect), a replay overlap
after a drop, a malformed event (a ``ProtocolError`` by design, no resume),
and 503/429 or a lost answer on ``POST /apps/run`` (retried under the same
``Idempotency-Key``) — or none at all. Apps: ``infsh/flux-schnell`` (2–6
steps), ``infsh/count``, ``infsh/sleep``, ``infsh/fail``.

The tasks run K at a time on threads sharing one client. For every task the
stream's event ids must be exactly 1..last with no repeat and in order; when
the stream ended at its terminal update, that update is the last event, its
status is the task's (``GET /tasks/{id}``) and the concatenated logs of the
updates equal the task's logs. At the end, with the client closed, no
connection may remain open on the server or in this process, and no thread
of the SDK may remain. Prints a summary (and ``--json`` writes it); exits 1
on any loss, repeat, disorder, untyped exception or leak.

``--dialect hosted`` runs the same against ``LocalServer(dialect="hosted")``
(HOSTED.md: no ids, no replay; the client reads it with
``dialect="hosted"``), half the tasks on a client asking for NDJSON, half on
one asking for SSE. The modes are every fault the server injects in that
dialect: close, reset, cut, torn, stall (no heartbeat, past the client's idle
limit), 429 and 500/502/503 with ``Retry-After`` on the stream, malformed,
``run_status``, ``run_drop``, and ``mute`` (after k objects only heartbeats,
for ever: only the client's reconcile, ``reconcile_interval``, learns the
task went on); apps add ``infsh/llm`` (``delta`` events). Hosted updates
have no ids to check: instead, for every task, the statuses the stream
handed out (consecutive repeats folded) must be exactly the task's
``events`` history from ``GET /tasks/{id}`` (folded the same way), the log
lines exactly the lines of its log records, the final output (or error) the
task's; a stream that ended with a typed error (a malformed object) must
have handed out a prefix of each.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODES = [
    "none",
    "close",
    "reset",
    "cut",
    "torn",
    "stall",
    "status_503",
    "status_429",
    "overlap",
    "malformed",
    "run_status",
    "run_drop",
]
HEARTBEAT = 0.2  # server heartbeat and client heartbeat_interval: idle limit 0.4 s
STALL_SECONDS = 0.6
HOSTED_MODES = [
    "none",
    "close",
    "reset",
    "cut",
    "torn",
    "stall",
    "status_429",
    "status_5xx",
    "malformed",
    "run_status",
    "run_drop",
    "mute",
]
HOSTED_SERVER_HEARTBEAT = 0.1  # seconds of silence before a heartbeat object
HOSTED_CLIENT_HEARTBEAT = 0.25  # the client's idle limit: 0.5 s without a byte
HOSTED_RECONCILE = 0.5  # seconds of heartbeats alone before the client re-reads the task
HOSTED_STALL = 0.8


def _pick_modes(rng: random.Random, choices: list[str]) -> list[str]:
    """One to three fault modes (most tasks one), sorted."""
    count = rng.choices([1, 2, 3], weights=[70, 25, 5])[0]
    return sorted({rng.choice(choices) for _ in range(count)})


def _faults(rng: random.Random, modes: list[str], events: int, stall_seconds: float) -> list[dict[str, Any]]:
    """The fault specs of ``modes`` for a task that sends ``events`` events (objects) on one connection."""
    faults: list[dict[str, Any]] = []

    def after() -> int:
        return rng.randint(0, max(0, events - 2))

    for mode in modes:
        if mode in ("close", "reset", "cut", "torn", "mute", "malformed"):
            faults.append({"kind": mode, "after": after()})
        elif mode == "stall":
            faults.append({"kind": "stall", "after": after(), "seconds": stall_seconds})
        elif mode in ("status_503", "status_429", "status_5xx"):
            code = int(mode[-3:]) if mode != "status_5xx" else rng.choice([500, 502, 503])
            faults.append(
                {
                    "kind": "status",
                    "code": code,
                    "retry_after": rng.choice([0.05, 0.1, 0.2]),
                    "times": rng.randint(1, 2),
                }
            )
            faults.append({"kind": rng.choice(["close", "reset"]), "after": after()})
        elif mode == "overlap":
            faults.append({"kind": rng.choice(["close", "reset", "cut"]), "after": after()})
            faults.append({"kind": "overlap", "back": rng.randint(1, 5)})
        elif mode == "run_status":
            faults.append({"kind": "run_status", "code": rng.choice([429, 503]), "retry_after": 0.05})
        elif mode == "run_drop":
            faults.append({"kind": "run_drop"})
    return faults


def plan_task(rng: random.Random) -> tuple[list[str], dict[str, Any]]:
    """The fault modes and the run config of one task."""
    roll = rng.random()
    if roll < 0.55:
        app, task_input, events = "infsh/flux-schnell", {"prompt": "soak", "steps": rng.randint(2, 6)}, 0
        events = 8 + task_input["steps"]  # received..running (7), a step each, uploading, completed
    elif roll < 0.75:
        n = rng.randint(5, 40)
        app, task_input, events = "infsh/count", {"n": n}, n + 1
    elif roll < 0.9:
        seconds = rng.randint(1, 4)
        app, task_input, events = "infsh/sleep", {"seconds": seconds}, seconds + 2
    else:
        app, task_input, events = "infsh/fail", {"message": "soak failure"}, 3
    modes = _pick_modes(rng, MODES)
    faults = _faults(rng, modes, events, STALL_SECONDS)
    if faults:
        task_input["_faults"] = faults
    return modes, {"app": app, "input": task_input}


def plan_hosted_task(rng: random.Random) -> tuple[list[str], dict[str, Any]]:
    """The fault modes and the run config of one hosted-dialect task (``after`` counts objects, snapshot included)."""
    roll = rng.random()
    if roll < 0.45:
        steps = rng.randint(2, 6)
        app, task_input, objects = "infsh/flux-schnell", {"prompt": "soak", "steps": steps}, 9 + steps
    elif roll < 0.6:
        n = rng.randint(5, 40)
        app, task_input, objects = "infsh/count", {"n": n}, n + 2
    elif roll < 0.75:
        seconds = rng.randint(1, 4)
        app, task_input, objects = "infsh/sleep", {"seconds": seconds}, seconds + 3
    elif roll < 0.9:
        app, task_input, objects = "infsh/llm", {"prompt": "soak " * rng.randint(1, 5)}, 18
    else:
        app, task_input, objects = "infsh/fail", {"message": "soak failure"}, 4
    modes = _pick_modes(rng, HOSTED_MODES)
    faults = _faults(rng, modes, objects, HOSTED_STALL)
    if faults:
        task_input["_faults"] = faults
    return modes, {"app": app, "input": task_input}


class Tally:
    """Counts shared by the worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tasks = 0
        self.updates = 0
        self.lost = 0
        self.duplicated = 0
        self.out_of_order = 0
        self.log_mismatch = 0
        self.status_mismatch = 0
        self.output_mismatch = 0
        self.formats = Counter[str]()
        self.ended = Counter[str]()  # terminal statuses, or the typed error's class name
        self.errors_by_mode = Counter[str]()  # "ErrorName: mode+mode"
        self.untyped: list[str] = []
        self.modes = Counter[str]()
        self.problems: list[str] = []

    def problem(self, text: str) -> None:
        with self.lock:
            if len(self.problems) < 50:
                self.problems.append(text)


def check_ids(ids: list[int]) -> tuple[int, int, int]:
    """(missing ids in 1..max, repeats, steps that did not go up) of a delivered id sequence."""
    duplicated = len(ids) - len(set(ids))
    out_of_order = sum(1 for a, b in zip(ids, ids[1:]) if b <= a)
    lost = (max(ids) - len(set(ids))) if ids else 0
    if ids and min(ids) < 1:
        lost += 1
    return lost, duplicated, out_of_order


def follow_task(
    client: Any, modes: list[str], config: dict[str, Any], tally: Tally
) -> Optional[tuple[Any, list[Any], Optional[BaseException]]]:
    """Run ``config`` as a stream to its end: (stream, updates, typed error or None); None after an untyped error."""
    from inferencesh import InferenceError

    updates: list[Any] = []
    error: Optional[BaseException] = None
    stream = None
    try:
        stream = client.run(config, stream=True, timeout=120)
        for update in stream:
            updates.append(update)
    except InferenceError as exc:
        error = exc
    except Exception as exc:
        with tally.lock:
            tally.untyped.append(f"{type(exc).__module__}.{type(exc).__name__}: {exc} (modes {modes})")
        return None
    return stream, updates, error


def one_task(client: Any, modes: list[str], config: dict[str, Any], tally: Tally) -> None:
    read = follow_task(client, modes, config, tally)
    if read is None:
        return
    stream, updates, error = read
    ids = [u.event_id for u in updates]
    lost, duplicated, out_of_order = check_ids(ids)
    label = "+".join(modes)
    log_mismatch = status_mismatch = 0
    if error is None:
        final = updates[-1] if updates else None
        task = client.tasks.get(stream.task_id, timeout=60) if stream is not None else None
        if final is None or not final.is_terminal:
            lost += 1
            tally.problem(f"{label}: the stream ended without a terminal update (ids {ids[-3:]})")
        elif task is not None:
            if task.status != final.status:
                status_mismatch = 1
                tally.problem(f"{label}: final status {final.status} but the task is {task.status}")
            if [line for u in updates for line in u.logs] != list(task.logs):
                log_mismatch = 1
                tally.problem(f"{label}: logs differ from the task's ({len(task.logs)} lines on the server)")
        ended = str(final.status) if final is not None else "nothing"
    else:
        ended = type(error).__name__
    if lost or duplicated or out_of_order:
        tally.problem(f"{label}: ids {ids} (lost {lost}, repeated {duplicated}, disordered {out_of_order})")
    with tally.lock:
        tally.tasks += 1
        tally.updates += len(updates)
        tally.lost += lost
        tally.duplicated += duplicated
        tally.out_of_order += out_of_order
        tally.log_mismatch += log_mismatch
        tally.status_mismatch += status_mismatch
        tally.ended[ended] += 1
        for mode in modes:
            tally.modes[mode] += 1
        if error is not None:
            tally.errors_by_mode[f"{type(error).__name__} [{label}]: {_reason(error)}"] += 1


def fold(values: list[Any]) -> list[Any]:
    """``values`` with consecutive repeats folded into one."""
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def compare_sequences(seen: list[Any], expected: list[Any], complete: bool) -> tuple[int, int, int]:
    """(lost, repeated, out of order) of ``seen`` against ``expected`` (all of it if ``complete``, else a prefix).

    ``seen`` must be exactly ``expected`` (or a prefix of it): an item seen
    again later is a repeat, one seen before its turn is out of order, one
    of ``expected`` never seen (before the last seen) is lost.
    """
    if seen == (expected if complete else expected[: len(seen)]):
        return 0, 0, 0
    repeated = len(seen) - len(set(map(repr, seen)))
    positions = []
    for item in seen:
        try:
            positions.append(expected.index(item))
        except ValueError:
            positions.append(-1)
    out_of_order = sum(1 for a, b in zip(positions, positions[1:]) if b < a)
    known = [p for p in positions if p >= 0]
    horizon = len(expected) if complete else (max(known) + 1 if known else 0)
    lost = len(set(range(horizon)) - set(known))
    if not (lost or repeated or out_of_order):
        lost = 1  # something differs that the counts do not name (an item the task does not have)
    return lost, repeated, out_of_order


def hosted_task_lines(dto: dict[str, Any]) -> list[str]:
    """The log lines of a TaskDTO's log records, in record order (the server ends each line with a newline)."""
    lines: list[str] = []
    for record in dto.get("logs") or []:
        lines.extend(re.split(r"\r\n|\r|\n", record.get("content") or "")[:-1])
    return lines


def one_hosted_task(
    clients: dict[str, Any], session: Any, base_url: str, modes: list[str], config: dict[str, Any], tally: Tally
) -> None:
    from inferencesh import TaskStatus

    fmt = "ndjson" if sum(map(ord, json.dumps(config))) % 2 else "sse"  # seeded by the plan: half and half
    client = clients[fmt]
    read = follow_task(client, modes, config, tally)
    if read is None:
        return
    stream, updates, error = read
    label = f"{fmt} {config['app']} " + "+".join(modes)
    lost = duplicated = out_of_order = log_mismatch = status_mismatch = output_mismatch = 0
    task_id = stream.task_id if stream is not None else None
    if task_id is None:
        tally.problem(f"{label}: no task id ({error!r})")
        lost = 1
    else:
        # The task's own record, once it is over (a stream cut by a typed error may leave it running).
        deadline = time.monotonic() + 60
        while True:
            answer = session.get(f"{base_url}/tasks/{task_id}", headers={"X-API-Version": "2"}, timeout=30)
            answer.raise_for_status()
            dto = answer.json()
            if TaskStatus.from_wire(dto["status"], "hosted").is_terminal or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        complete = error is None
        expected = fold([TaskStatus.from_wire(e["status"], "hosted") for e in dto.get("events") or []])
        seen = fold([u.status for u in updates])
        s_lost, s_dup, s_order = compare_sequences(seen, expected, complete)
        if s_lost or s_dup or s_order:
            status_mismatch = 1
            tally.problem(f"{label}: statuses {[s.name for s in seen]} against the task's {[s.name for s in expected]}")
        lines = [line for u in updates for line in u.logs]
        task_lines = hosted_task_lines(dto)
        l_lost, l_dup, l_order = compare_sequences(lines, task_lines, complete)
        if l_lost or l_dup or l_order:
            log_mismatch = 1
            tally.problem(f"{label}: {len(lines)} log lines against the task's {len(task_lines)} ({lines[-3:]})")
        lost, duplicated, out_of_order = s_lost + l_lost, s_dup + l_dup, s_order + l_order
        if complete:
            final = updates[-1] if updates else None
            if final is None or not final.is_terminal:
                lost += 1
                tally.problem(f"{label}: the stream ended without a terminal update")
            elif final.status is TaskStatus.COMPLETED and final.output != dto.get("output"):
                output_mismatch = 1
                tally.problem(f"{label}: output {final.output!r} but the task's is {dto.get('output')!r}")
            elif final.status is not TaskStatus.COMPLETED and final.error != dto.get("error"):
                output_mismatch = 1
                tally.problem(f"{label}: error {final.error!r} but the task's is {dto.get('error')!r}")
    ended = (str(updates[-1].status) if updates else "nothing") if error is None else type(error).__name__
    with tally.lock:
        tally.tasks += 1
        tally.updates += len(updates)
        tally.lost += lost
        tally.duplicated += duplicated
        tally.out_of_order += out_of_order
        tally.log_mismatch += log_mismatch
        tally.status_mismatch += status_mismatch
        tally.output_mismatch += output_mismatch
        tally.ended[ended] += 1
        tally.formats[fmt] += 1
        for mode in modes:
            tally.modes[mode] += 1
        if error is not None:
            tally.errors_by_mode[f"{type(error).__name__} [{label.split(' ', 2)[2]}]: {_reason(error)}"] += 1


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or str(error)
    return re.sub(r"tsk_\w+", "tsk_...", str(reason)).split(" (event id")[0][:90]


def _sdk_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("inferencesh"))


def _client_connections(port: int) -> list[str]:
    """The states of this process's TCP sockets to the server (CLOSE_WAIT ones are leaked fds)."""
    import psutil

    conns = psutil.Process().net_connections(kind="tcp")
    return sorted(c.status for c in conns if c.raddr and c.raddr.port == port)


def run(
    tasks: int,
    concurrency: int = 24,
    seed: int = 1,
    speed: float = 20.0,
    progress: bool = True,
    dialect: str = "v1",
) -> dict[str, Any]:
    """Run the soak; returns the summary (``ok`` is False on any loss, repeat, disorder, untyped error or leak)."""
    import requests

    from bench._localserver import ServerProcess
    from inferencesh import inference

    hosted = dialect == "hosted"
    rng = random.Random(seed)
    plans = [(plan_hosted_task if hosted else plan_task)(rng) for _ in range(tasks)]
    tally = Tally()
    threads_before = {t.ident for t in threading.enumerate()}
    started = time.monotonic()
    options: dict[str, Any] = (
        {"heartbeat": HOSTED_SERVER_HEARTBEAT, "dialect": "hosted"}
        if hosted
        else {"heartbeat": HEARTBEAT, "retry_ms": 20}
    )
    with ServerProcess(speed=speed, **options) as server:
        port = int(server.url.rsplit(":", 1)[1])
        settings: dict[str, Any] = {
            "api_key": "soak",
            "base_url": server.url,
            "heartbeat_interval": HOSTED_CLIENT_HEARTBEAT if hosted else HEARTBEAT,
            "backoff_initial": 0.02,
            "backoff_max": 0.2,
            "max_retry_delay": 1.0,
            "pool_maxsize": concurrency + 8,
        }
        session = requests.Session()
        session.headers["Authorization"] = "Bearer soak"
        session.headers["Connection"] = "close"  # the checker's reads leave no pooled socket behind
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=concurrency + 8))
        if hosted:
            hosted_settings = {**settings, "dialect": "hosted", "reconcile_interval": HOSTED_RECONCILE}
            clients = {fmt: inference(**hosted_settings, stream_format=fmt) for fmt in ("ndjson", "sse")}
        else:
            clients = {"v1": inference(**settings)}
        with ThreadPoolExecutor(concurrency, thread_name_prefix="soak") as pool:
            if hosted:
                futures = [
                    pool.submit(one_hosted_task, clients, session, server.url, modes, config, tally)
                    for modes, config in plans
                ]
            else:
                futures = [pool.submit(one_task, clients["v1"], modes, config, tally) for modes, config in plans]
            last = time.monotonic()
            for done, future in enumerate(futures, 1):
                future.result()
                if progress and time.monotonic() - last > 10:
                    last = time.monotonic()
                    rate = done / (last - started)
                    print(f"  {done}/{tasks} tasks, {rate:.0f}/s, {tally.updates} updates", file=sys.stderr, flush=True)
        elapsed = time.monotonic() - started
        for client in clients.values():
            client.close()
        session.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (server.ask("open_connections") or _sdk_threads()):
            time.sleep(0.05)
        server_connections = server.ask("open_connections")
        server_streams = server.ask("open_streams")
        local_sockets = _client_connections(port)
        records = server.ask("requests")
    leaked_threads = [t.name for t in threading.enumerate() if t.ident not in threads_before]
    stream_answers = Counter(r["status"] for r in records if r["path"].endswith("/stream"))
    runs = [r for r in records if r["method"] == "POST" and r["path"] == "/apps/run"]
    task_reads = [
        r
        for r in records
        if r["method"] == "GET"
        and re.fullmatch(r"/tasks/[^/]+", r["path"])
        and not (r["user_agent"] or "").startswith("python-requests")
    ]
    summary = {
        "tasks": tasks,
        "dialect": dialect,
        "concurrency": concurrency,
        "seed": seed,
        "speed": speed,
        "seconds": elapsed,
        "tasks_per_s": tasks / elapsed,
        "updates": tally.updates,
        "checked_tasks": tally.tasks,
        "lost": tally.lost,
        "duplicated": tally.duplicated,
        "out_of_order": tally.out_of_order,
        "log_mismatches": tally.log_mismatch,
        "status_mismatches": tally.status_mismatch,
        "output_mismatches": tally.output_mismatch,
        "stream_formats": dict(tally.formats),
        "untyped_exceptions": tally.untyped,
        "ended": dict(tally.ended.most_common()),
        "typed_errors": dict(tally.errors_by_mode.most_common()),
        "modes_drawn": dict(tally.modes.most_common()),
        "server_stream_requests": dict(sorted(stream_answers.items(), key=lambda kv: str(kv[0]))),
        "server_run_requests": {
            "total": len(runs),
            "retried_with_same_key": len(runs) - len({r["idempotency_key"] for r in runs}),
            "answers": dict(Counter(r["status"] for r in runs)),
        },
        "client_task_reads": len(task_reads),  # GET /tasks/{id} by the SDK: after drops, reconciles
        "leaks": {
            "server_open_connections": server_connections,
            "server_open_streams": server_streams,
            "client_sockets_to_server": len(local_sockets),
            "client_socket_states": dict(Counter(local_sockets)),
            "threads": leaked_threads,
        },
        "problems": tally.problems,
    }
    summary["ok"] = (
        tally.tasks == tasks
        and tally.lost == tally.duplicated == tally.out_of_order == 0
        and tally.log_mismatch == tally.status_mismatch == tally.output_mismatch == 0
        and not tally.untyped
        and server_connections == 0
        and not local_sockets
        and not leaked_threads
    )
    return summary


def format_summary(s: dict[str, Any]) -> str:
    leaks = s["leaks"]
    lines = [
        f"soak ({s.get('dialect', 'v1')}): {s['tasks']:,} tasks, {s['concurrency']} at once, seed {s['seed']}, "
        f"speed {s['speed']:g}: "
        f"{s['seconds']:.0f} s ({s['tasks_per_s']:.1f} tasks/s), {s['updates']:,} updates",
        f"  lost {s['lost']}, duplicated {s['duplicated']}, out of order {s['out_of_order']}, "
        f"log mismatches {s['log_mismatches']}, status mismatches {s['status_mismatches']}, "
        f"output mismatches {s.get('output_mismatches', 0)}, untyped exceptions {len(s['untyped_exceptions'])}",
        "  streams ended: " + ", ".join(f"{k} {v}" for k, v in s["ended"].items()),
        "  stream formats: " + (", ".join(f"{k} {v}" for k, v in s.get("stream_formats", {}).items()) or "sse"),
        "  fault modes drawn: " + ", ".join(f"{k} {v}" for k, v in s["modes_drawn"].items()),
        "  stream requests by answer: " + ", ".join(f"{k} {v}" for k, v in s["server_stream_requests"].items()),
        f"  POST /apps/run: {s['server_run_requests']['total']} "
        f"({s['server_run_requests']['retried_with_same_key']} retries with the same Idempotency-Key), answers "
        + ", ".join(f"{k} {v}" for k, v in s["server_run_requests"]["answers"].items()),
        f"  GET /tasks/{{id}} by the SDK (after a drop, or heartbeats alone): {s.get('client_task_reads', 0)}",
        "  typed errors: " + (", ".join(f"{v} x {k}" for k, v in s["typed_errors"].items()) or "none"),
        f"  left at the end: server connections {leaks['server_open_connections']}, server streams "
        f"{leaks['server_open_streams']}, client sockets {leaks['client_sockets_to_server']}, "
        f"threads {leaks['threads'] or 0}",
    ]
    for text in s["untyped_exceptions"][:10]:
        lines.append(f"  UNTYPED: {text}")
    for text in s["problems"][:10]:
        lines.append(f"  PROBLEM: {text}")
    lines.append("  OK" if s["ok"] else "  FAILED")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=20.0, help="LocalServer speed (divides app delays)")
    parser.add_argument("--json", type=str, default=None, help="also write the summary to this file")
    parser.add_argument("--dialect", choices=["v1", "hosted"], default="v1", help="the server's (and client's) dialect")
    args = parser.parse_args(argv)
    summary = run(args.tasks, args.concurrency, args.seed, args.speed, dialect=args.dialect)
    print(format_summary(summary))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary, out, indent=2)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
