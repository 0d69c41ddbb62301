"""Mutation runner: switch one README promise off at a time and check that a test notices.

Each ``Mutation`` names a behaviour the README promises, an exact ``old`` text in a
file under ``inferencesh/`` and the ``new`` text that switches the behaviour off,
and the tests expected to catch it. For each mutation the runner makes a fresh
copy of the repository (``git worktree add --detach <tmp> <rev>``; the working
tree it runs from is never edited), applies the replacement there (it fails
loudly unless ``old`` occurs exactly once and the result compiles), checks that
``import inferencesh`` in that copy imports the copy, and runs
``python -m pytest -x -q <tests>`` with the copy first on ``PYTHONPATH`` and as the
working directory. Tests failing is CAUGHT; tests passing is SURVIVED.

Before any mutation, the same tests (all of the selected mutations') must pass on an
unmutated copy. One table is printed at the end; the exit status is 1 if any
mutation survived, 2 if the baseline failed or a mutation could not be applied.

    python bench/mutate.py                      # every mutation, about 5 minutes on 2 cores
    python bench/mutate.py --list               # the mutations, their files and tests
    python bench/mutate.py --only dedupe-off close-noop
    python bench/mutate.py --overlay tests/integration/test_new.py   # also copy uncommitted files in
    python bench/mutate.py --only dedupe-off --tests tests/hosted   # other tests than the mutation's own
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT = 300.0


@dataclasses.dataclass(frozen=True)
class Mutation:
    """One switch-off: ``old`` → ``new`` in ``path`` (relative to the repository root)."""

    name: str
    behaviour: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Outcome:
    mutation: Mutation
    result: str  # CAUGHT, SURVIVED, ERROR
    seconds: float
    detail: str  # the first failing test, or why it is an error


class MutationError(Exception):
    """A mutation that cannot be applied as written (``old`` missing or repeated, a syntax error)."""


R = "tests/integration/test_resume.py"
S = "tests/integration/test_stream.py"
TC = "tests/integration/test_timeout_cancel.py"
M = "tests/integration/test_many.py"
MB = "tests/integration/test_many_backpressure.py"
HR = "tests/unit/test_hosted_reader.py"
X1 = "tests/hosted/test_exactly_once.py"

MUTATIONS: tuple[Mutation, ...] = (
    # -- Never losing an update (PROTOCOL.md streams) ---------------------------------------
    Mutation(
        "reconnect-never",
        "a dropped stream reconnects by itself",
        "inferencesh/_resume.py",
        "attempts=self.max_reconnects + 1",
        "attempts=1",
        (f"{R}::test_many_drops_in_one_stream",),
    ),
    Mutation(
        "reconnects-unbounded",
        "ConnectionLost after max_reconnects attempts in a row without a new event",
        "inferencesh/_resume.py",
        "attempts=self.max_reconnects + 1",
        "attempts=self.max_reconnects + 20",
        (f"{R}::test_503_forever_on_reconnect_exhausts_the_attempts",),
    ),
    Mutation(
        "last-event-id-not-sent",
        "a reconnect sends Last-Event-ID with the last event delivered",
        "inferencesh/_resume.py",
        '            headers["Last-Event-ID"] = str(resume)\n',
        "            pass\n",
        (f"{R}::test_replay_overlap_is_deduplicated",),
    ),
    Mutation(
        "id-only-block-ignored",
        "an id-only SSE block sets the last event ID (WHATWG), used on resume",
        "inferencesh/_sse.py",
        "        if last_id is not None and not unfinished:\n",
        "        if False:\n",
        ("tests/unit/test_sse.py",),
    ),
    Mutation(
        "dedupe-off",
        "ids already delivered are skipped after a replay: every update exactly once",
        "inferencesh/_dialects.py",
        "            if last is not None and number <= last:\n                continue\n",
        "            pass\n",
        (f"{R}::test_replay_overlap_is_deduplicated",),
    ),
    Mutation(
        "idle-timeout-off",
        "an idle read (2 x heartbeat interval without a byte) is a drop",
        "inferencesh/_resume.py",
        "stream=True, read_timeout=self.idle_timeout",
        "stream=True, read_timeout=None",
        (f"{R}::test_stall_beyond_the_idle_limit_reconnects",),
    ),
    Mutation(
        "sse-retry-ignored",
        "the reconnect waits at least the server's retry: (capped at max_retry_delay)",
        "inferencesh/_resume.py",
        "        return None if self.retry_ms is None else self.retry_ms / 1000.0\n",
        "        return None\n",
        ("tests/hostile/test_mutation_gaps.py::test_the_servers_retry_is_waited_before_reconnecting",),
    ),
    Mutation(
        "sse-cr-ignored",
        "the SSE decoder takes CR, LF and CRLF as line ends",
        "inferencesh/_sse.py",
        '            chunk = chunk.replace(b"\\r\\n", b"\\n").replace(b"\\r", b"\\n")\n',
        '            chunk = chunk.replace(b"\\r\\n", b"\\n")\n',
        ("tests/unit/test_sse.py",),
    ),
    Mutation(
        "sse-cap-off",
        "an SSE event over max_event_bytes (8 MiB) raises ProtocolError",
        "inferencesh/_sse.py",
        "                if len(block) > cap:\n                    raise self._too_large()\n",
        "                pass\n",
        ("tests/unit/test_sse.py::test_block_over_cap_raises",),
    ),
    # -- Retries and idempotency -----------------------------------------------------------
    Mutation(
        "retry-after-ignored",
        "retries honour Retry-After",
        "inferencesh/_transport.py",
        '                retry_after = parse_retry_after(response.headers.get("Retry-After"), self.max_retry_delay)\n',
        "                retry_after = None\n",
        (f"{R}::test_retry_after_is_honoured",),
    ),
    Mutation(
        "retryable-statuses-not-retried",
        "408, 429 and 5xx are retried",
        "inferencesh/_answers.py",
        "    return status in (408, 429) or 500 <= status <= 599\n",
        "    return False\n",
        (f"{R}::test_run_retries_429_with_retry_after",),
    ),
    Mutation(
        "other-4xx-retried",
        "other 4xx answers raise at once",
        "inferencesh/_answers.py",
        "    return status in (408, 429) or 500 <= status <= 599\n",
        "    return status >= 400\n",
        (f"{R}::test_error_answers_are_typed_and_not_retried",),
    ),
    Mutation(
        "idempotency-key-absent",
        "POST /apps/run carries a fresh Idempotency-Key",
        "inferencesh/client.py",
        'headers={"Idempotency-Key": uuid.uuid4().hex}',
        "headers=None",
        (f"{R}::test_every_run_gets_a_fresh_idempotency_key",),
    ),
    Mutation(
        "idempotency-key-not-reused",
        "retries of POST /apps/run reuse the same Idempotency-Key: a lost answer never starts a second task",
        "inferencesh/_transport.py",
        "response = self.send(method, path, scope=scope, body=body, headers=headers, read_timeout=read)",
        "response = self.send(method, path, scope=scope, body=body, read_timeout=read, headers=None if headers"
        ' is None else {k: (__import__("uuid").uuid4().hex if k == "Idempotency-Key" else v)'
        " for k, v in headers.items()})",
        (f"{R}::test_lost_run_answer_does_not_start_a_second_task",),
    ),
    # -- Timeout, cancel, release ----------------------------------------------------------
    Mutation(
        "timeout-never-fires",
        "timeout= is one deadline that fires even while the server sends nothing",
        "inferencesh/_watchdog.py",
        "        self._timer = None if timeout is None else _WATCHDOG.schedule(timeout, lambda: self.fire(TIMEOUT))\n",
        "        self._timer = None\n",
        (f"{TC}::test_timeout_on_a_silent_server",),
    ),
    Mutation(
        "watchdog-no-shutdown",
        "the watchdog shuts the socket down, so a blocked read returns at once",
        "inferencesh/_watchdog.py",
        "            target.shutdown(socket.SHUT_RDWR)\n",
        "            pass\n",
        (f"{TC}::test_cancel_from_another_thread",),
    ),
    Mutation(
        "cancel-token-ignored",
        "a CancelToken cancels every stream using it",
        "inferencesh/_watchdog.py",
        "        self._token_key = None if cancel is None else cancel._subscribe(lambda: self.fire(CANCEL))\n",
        "        self._token_key = None\n",
        (f"{TC}::test_cancel_from_another_thread",),
    ),
    Mutation(
        "cancel-task-on-abort-off",
        "cancel_task_on_abort=True cancels the task on the server after a cancel, timeout or Ctrl-C",
        "inferencesh/_stream.py",
        "    on_abort = once(cancel_on_server) if cancel_task_on_abort else None\n",
        "    on_abort = None\n",
        (f"{TC}::test_cancel_task_on_abort_cancels_the_task_on_the_server",),
    ),
    Mutation(
        "run-many-cancel-task-on-abort-off",
        "run_many(cancel_task_on_abort=True) cancels the other tasks on the server",
        "inferencesh/_many.py",
        "cancel=batch.token, cancel_task_on_abort=cancel_task_on_abort\n",
        "cancel=batch.token, cancel_task_on_abort=False\n",
        (f"{MB}::test_run_many_timeout_cancels_the_tasks_only_with_cancel_task_on_abort",),
    ),
    Mutation(
        "close-noop",
        "stream.close() releases the HTTP connection at once",
        "inferencesh/_iterator.py",
        "        self._feed.scope.fire(CLOSE)\n        gen, self._gen = self._gen, None\n",
        "        return\n        gen, self._gen = self._gen, None\n",
        (f"{S}::test_leaving_early_releases_the_connection",),
    ),
    Mutation(
        "break-keeps-connection",
        "breaking out of the loop releases the HTTP connection at once, even while the stream is held",
        "inferencesh/_iterator.py",
        "        finally:\n            if self._gen is not None:\n                self.close()\n",
        "        finally:\n            pass\n",
        (f"{S}::test_leaving_early_releases_the_connection",),
    ),
    Mutation(
        "stream-in-a-cycle",
        "dropping the last reference to a stream releases the HTTP connection at once",
        "inferencesh/_iterator.py",
        "        self._watchers: list[Watcher[T]] = []\n",
        "        self._watchers: list[Watcher[T]] = []\n        self._cycle = self\n",
        ("tests/integration/test_mutation_gaps.py",),
    ),
    # -- Many at once ------------------------------------------------------------------------
    Mutation(
        "stream-many-unbounded",
        "stream_many: a slow consumer slows the readers (bounded queue), memory stays flat",
        "inferencesh/_merged.py",
        "            while bounded and not self._closed and len(self._items) >= self._size:\n",
        "            while False:\n",
        (f"{MB}::test_a_slow_consumer_keeps_the_clients_memory_flat",),
    ),
    Mutation(
        "stream-many-break-keeps-streams",
        "leaving a stream_many loop closes every stream and joins every thread, iterator held or not",
        "inferencesh/_merged.py",
        "        finally:\n            self.close()\n\n    def __next__",
        "        finally:\n            pass\n\n    def __next__",
        (f"{MB}::test_leaving_the_loop_closes_everything_while_the_iterator_is_held",),
    ),
    Mutation(
        "pool-not-grown",
        "run_many / stream_many grow the client's pool to their number of workers",
        "inferencesh/_many.py",
        "        if client.settings.pool_maxsize >= size:\n            return\n",
        "        return\n",
        (f"{M}::test_the_pool_grows_to_the_work_and_keeps_every_connection",),
    ),
    # -- The hosted service -------------------------------------------------------------------
    Mutation(
        "hosted-log-cursor-stuck",
        "hosted: each log line once (the log cursor advances)",
        "inferencesh/_hosted.py",
        "            self.consumed[key] = start + len(body) - len(tail)\n",
        "            self.consumed[key] = start\n",
        (f"{HR}::test_growing_records_hand_out_each_line_once_in_order",),
    ),
    Mutation(
        "hosted-history-ignored",
        "hosted: after a drop, exactly the statuses of the history not seen yet, in order",
        "inferencesh/_hosted.py",
        "    return history[position:]\n",
        "    return [] if handed and history[-1] is handed[-1] else history[-1:]\n",
        (f"{HR}::test_a_history_read_after_a_drop_gives_exactly_the_missed_statuses",),
    ),
    Mutation(
        "hosted-reconcile-off",
        "hosted: reconcile_interval seconds of heartbeats alone re-read the task",
        "inferencesh/_hosted.py",
        "        return time.monotonic() - self.last_news > self.reconcile_interval\n",
        "        return False\n",
        (f"{X1}::test_a_mute_stream_ends_promptly_once_the_task_ended",),
    ),
    Mutation(
        "hosted-recover-nothing",
        "hosted: after any drop the stream reads GET /tasks/{id} and hands out what it missed",
        "inferencesh/_hosted.py",
        "        return self.recover_from(data)\n\n    def recover_from",
        "        return []\n\n    def recover_from",
        (f"{X1}::test_a_stream_mute_from_its_first_byte_on_a_finished_task_ends",),
    ),
    Mutation(
        "delta-replaces",
        "hosted: partial_output accumulates delta text (concatenates)",
        "inferencesh/_hosted_deltas.py",
        "                    held.append(value)\n",
        "                    held[:] = [value]\n",
        (f"{HR}::test_deltas_concatenate_merge_tool_calls_by_index_and_replace_usage",),
    ),
    Mutation(
        "ndjson-unfinished-line-accepted",
        "an unfinished last NDJSON line is never parsed (such an end is a drop)",
        "inferencesh/_ndjson.py",
        '                lines = chunk.split(b"\\n")\n',
        '                lines = (chunk + b"\\n" if chunk.rstrip(b" \\t\\r").endswith(b"}") else chunk)'
        '.split(b"\\n")\n',
        ("tests/unit/test_ndjson.py::test_unfinished_last_line_is_not_yielded_and_pending",),
    ),
    # -- The key stays home -------------------------------------------------------------------
    Mutation(
        "key-not-redacted",
        "a key echoed by a server is replaced by *** in every error",
        "inferencesh/_errors.py",
        '            text = text.replace(secret, "***")\n',
        "            pass\n",
        ("tests/hostile/test_review_cases.py::test_a_key_echoed_by_the_server_never_reaches_the_caller",),
    ),
    Mutation(
        "upload-put-with-key",
        "the upload PUT (another host) carries no key",
        "inferencesh/_foreign.py",
        "                auth=NO_AUTH,\n",
        "                auth=None,\n",
        ("tests/files/test_key_stays_home.py",),
    ),
    # -- Files -----------------------------------------------------------------------------------
    Mutation(
        "download-no-range",
        "a cut download resumes with Range",
        "inferencesh/_download.py",
        "    if state.have:\n",
        "    if False:\n",
        ("tests/files/test_download.py::test_a_download_cut_in_the_middle_resumes_with_range",),
    ),
    Mutation(
        "download-name-unchecked",
        "a file name that would leave the directory (..%2F) raises UsageError",
        "inferencesh/_download.py",
        '    if name in (".", "..") or "/" in name or "\\\\" in name or "\\x00" in name:\n',
        "    if False:\n",
        ("tests/files/test_download.py::test_only_http_urls_and_names_that_stay_in_the_directory",),
    ),
    # -- Browser relay ---------------------------------------------------------------------------
    Mutation(
        "relay-host-check-off",
        "relay: a /proxy target must be the upstream or an allowed origin (never an open proxy)",
        "inferencesh/relay/_target.py",
        "        elif origin not in self.extra:\n",
        "        elif False:\n",
        ("tests/relay/test_forward_security.py::test_every_url_trick_is_refused_before_a_byte_is_sent",),
    ),
    Mutation(
        "relay-task-id-unchecked",
        "relay: task ids must be [A-Za-z0-9_-]{1,128}, else 400 before anything is sent",
        "inferencesh/relay/_validate.py",
        "    if not _TASK_ID.fullmatch(value):\n",
        "    if False:\n",
        ("tests/relay/test_security.py::test_bad_task_ids_are_refused_and_never_forwarded",),
    ),
)


# -- running ------------------------------------------------------------------------------------


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True)
    return done.stdout


def check_applies(mutation: Mutation, text: str) -> str:
    """``text`` with the mutation applied; ``MutationError`` unless ``old`` occurs exactly once and it compiles."""
    count = text.count(mutation.old)
    if count != 1:
        raise MutationError(f"{mutation.name}: 'old' occurs {count} times in {mutation.path}, not once")
    mutated = text.replace(mutation.old, mutation.new, 1)
    try:
        compile(mutated, mutation.path, "exec")
    except SyntaxError as exc:
        raise MutationError(f"{mutation.name}: the mutated {mutation.path} does not compile: {exc}") from None
    return mutated


@contextmanager
def copy_of_repo(rev: str, overlay: Sequence[str]) -> Iterator[Path]:
    """A detached worktree of ``rev`` in a temporary directory (plus ``overlay`` files from the working tree)."""
    parent = Path(tempfile.mkdtemp(prefix="inferencesh-mutate-"))
    tree = parent / "repo"
    _git("worktree", "add", "--detach", "--quiet", str(tree), rev)
    try:
        for relative in overlay:
            target = tree / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / relative, target)
        yield tree
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)
        shutil.rmtree(parent, ignore_errors=True)


def _environment(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def check_import(tree: Path) -> None:
    """Fail loudly unless ``import inferencesh`` in the copy imports the copy (not the editable install)."""
    done = subprocess.run(
        [sys.executable, "-c", "import inferencesh; print(inferencesh.__file__)"],
        cwd=tree,
        env=_environment(tree),
        capture_output=True,
        text=True,
        check=True,
    )
    imported = Path(done.stdout.strip()).resolve()
    if not imported.is_relative_to(tree.resolve()):
        raise MutationError(f"the copy at {tree} imports inferencesh from {imported}")


_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


# pytest's last line: "1 failed, 3 passed in 2.31s" (with -q), or "==== 1 failed in 2.31s ====".
_SUMMARY = re.compile(r"^=*\s*\d+ \w+.* in [\d.]+s\b.*$")
_EXIT_GRACE = 15.0  # seconds a pytest that printed its summary gets to exit (threads left running)


def run_tests(tree: Path, tests: Sequence[str], timeout: float) -> tuple[Optional[int], str, float, str]:
    """(pytest's exit status or None on timeout, its output, seconds, a note) for ``tests`` in the copy.

    A pytest that printed its summary but does not exit (a mutation that leaves non-daemon threads
    running) is stopped after a grace period and judged by its summary; the note says so.
    """
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
        cwd=tree,
        env=_environment(tree),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    summary: list[tuple[float, str]] = []  # (when it was read, pytest's summary line)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if _SUMMARY.match(line.strip()):
                summary.append((time.monotonic(), line.strip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    code: Optional[int] = None
    note = ""
    while True:
        try:
            code = process.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if summary and now - summary[-1][0] >= _EXIT_GRACE:
            os.killpg(process.pid, signal.SIGKILL)  # the group of the pytest we started, and only it
            process.wait()
            failed = any(word in summary[-1][1] for word in ("failed", "error"))
            code, note = (1 if failed else 0), f"(pytest did not exit {_EXIT_GRACE:.0f} s after its summary)"
            break
        if now - started >= timeout:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            break
    reader.join(timeout=5)
    return code, "".join(lines), time.monotonic() - started, note


def _first_failure(output: str) -> str:
    match = _FAILED.search(output)
    return match.group(1) if match else ""


def run_one(mutation: Mutation, rev: str, overlay: Sequence[str], timeout: float, verbose: bool) -> Outcome:
    with copy_of_repo(rev, overlay) as tree:
        source = tree / mutation.path
        source.write_text(check_applies(mutation, source.read_text()))
        check_import(tree)
        code, output, seconds, note = run_tests(tree, mutation.tests, timeout)
    if verbose:
        print(output, file=sys.stderr)
    if code is None:
        return Outcome(mutation, "CAUGHT", seconds, f"(timeout after {timeout:.0f} s: the tests hang)")
    if code == 0:
        return Outcome(mutation, "SURVIVED", seconds, note)
    if code in (1, 2, 3):  # failures, or a collection/internal error caused by the mutated code
        caught_by = _first_failure(output) or f"(pytest exit status {code})"
        return Outcome(mutation, "CAUGHT", seconds, f"{caught_by} {note}".strip())
    tail = output.strip().splitlines()[-1:] or [""]
    return Outcome(mutation, "ERROR", seconds, f"pytest exit status {code}: {tail[0]}")


def baseline(mutations: Sequence[Mutation], rev: str, overlay: Sequence[str], timeout: float) -> bool:
    tests = list(dict.fromkeys(test for mutation in mutations for test in mutation.tests))
    print(f"baseline: {len(tests)} test paths on the unmutated copy ...", flush=True)
    with copy_of_repo(rev, overlay) as tree:
        check_import(tree)
        code, output, seconds, _ = run_tests(tree, tests, timeout * 2)
    if code != 0:
        print(output, file=sys.stderr)
        print(f"baseline FAILED (pytest exit status {code}) after {seconds:.0f} s", file=sys.stderr)
        return False
    print(f"baseline passed in {seconds:.0f} s", flush=True)
    return True


def table(outcomes: Sequence[Outcome]) -> str:
    rows = [("mutation", "result", "s", "behaviour switched off", "caught by")]
    for outcome in outcomes:
        rows.append(
            (
                outcome.mutation.name,
                outcome.result,
                f"{outcome.seconds:.0f}",
                outcome.mutation.behaviour,
                outcome.detail,
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = []
    for number, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4])
        if number == 0:
            lines.append("  ".join("-" * width for width in widths) + "  " + "-" * 9)
    return "\n".join(line.rstrip() for line in lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these mutations only")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--rev", default="HEAD", help="the commit to copy (default HEAD)")
    parser.add_argument(
        "--overlay", nargs="+", default=[], metavar="FILE", help="files copied from the working tree into each copy"
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per mutation (default 300)")
    parser.add_argument("--verbose", action="store_true", help="print pytest's output for each mutation")
    parser.add_argument(
        "--tests", nargs="+", metavar="PATH", help="run these tests instead of each mutation's own (to explore)"
    )
    args = parser.parse_args(argv)

    names = [mutation.name for mutation in MUTATIONS]
    if len(set(names)) != len(names):
        raise SystemExit("mutation names are not unique")
    selected = list(MUTATIONS)
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"unknown mutations: {', '.join(unknown)} (see --list)")
        selected = [mutation for mutation in MUTATIONS if mutation.name in args.only]
    if args.tests:
        selected = [dataclasses.replace(mutation, tests=tuple(args.tests)) for mutation in selected]

    if args.list:
        for mutation in selected:
            print(f"{mutation.name}\n    {mutation.behaviour}\n    {mutation.path}")
            for test in mutation.tests:
                print(f"    test: {test}")
        return 0

    try:
        for mutation in selected:  # every mutation must apply to the copied commit before anything runs
            check_applies(mutation, _git("show", f"{args.rev}:{mutation.path}"))
        if not baseline(selected, args.rev, args.overlay, args.timeout):
            return 2
        outcomes = []
        for number, mutation in enumerate(selected, 1):
            print(f"[{number}/{len(selected)}] {mutation.name} ...", end=" ", flush=True)
            outcome = run_one(mutation, args.rev, args.overlay, args.timeout, args.verbose)
            print(f"{outcome.result} ({outcome.seconds:.0f} s) {outcome.detail}", flush=True)
            outcomes.append(outcome)
    except MutationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    print()
    print(table(outcomes))
    counts = {result: sum(o.result == result for o in outcomes) for result in ("CAUGHT", "SURVIVED", "ERROR")}
    print(f"\n{counts['CAUGHT']} caught, {counts['SURVIVED']} survived, {counts['ERROR']} errors")
    if counts["ERROR"]:
        return 2
    return 1 if counts["SURVIVED"] else 0


if __name__ == "__main__":
    sys.exit(main())
