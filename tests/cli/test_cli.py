"""``infsh`` run, stream, get, cancel, relay: output, every exit code, Ctrl-C, and the key never printed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from inferencesh import Client, TaskStatus
from inferencesh.server import LocalServer

from .conftest import SECRET, infsh, interrupt, read_until, start

LONG = '{"seconds": 300}'  # 30 s at speed 10, so it is still running when the test acts


def test_help_documents_every_exit_code(env: dict[str, str]) -> None:
    done = infsh(["--help"], env)
    assert done.returncode == 0
    for code, meaning in [
        ("0", "completed"),
        ("1", "failed"),
        ("2", "usage"),
        ("3", "cancelled"),
        ("4", "timeout"),
        ("5", "API or connection error"),
        ("130", "interrupted"),
    ]:
        assert any(line.split()[:1] == [code] and meaning in line for line in done.stdout.splitlines()), code
    assert "INFERENCE_API_KEY" in done.stdout and "INFERENCE_BASE_URL" in done.stdout
    for command in ("run", "stream", "get", "cancel", "serve", "demo", "relay"):
        assert infsh([command, "--help"], env).returncode == 0


def test_run_prints_the_output_and_exits_0(env: dict[str, str]) -> None:
    done = infsh(["run", "infsh/echo", "--input", '{"prompt": "a fox", "n": 2}'], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"prompt": "a fox", "n": 2}
    assert done.stderr.startswith("task tsk_")


def test_run_reads_the_input_from_a_file_or_stdin(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_text('{"from": "file"}')
    assert json.loads(infsh(["run", "infsh/echo", "--input-file", str(path)], env).stdout) == {"from": "file"}
    done = infsh(["run", "infsh/echo", "--input-file", "-"], env, stdin='{"from": "stdin"}')
    assert json.loads(done.stdout) == {"from": "stdin"}


def test_run_stream_shows_statuses_and_logs_live(env: dict[str, str]) -> None:
    done = infsh(["run", "infsh/fail", "--input", '{"message": "no GPU"}', "--stream"], env)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert lines[0].startswith("task tsk_") and lines[0].endswith(": infsh/fail")
    assert lines.index("status: running") < lines.index("  Starting job") < lines.index("status: failed")
    assert lines[-1].endswith("failed: no GPU")
    assert done.stdout == ""


def test_run_json_prints_one_object_per_update(env: dict[str, str]) -> None:
    done = infsh(["run", "infsh/sleep", "--input", '{"seconds": 3}', "--json"], env)
    assert done.returncode == 0, done.stderr
    updates = [json.loads(line) for line in done.stdout.splitlines()]
    assert [u["event_id"] for u in updates] == list(range(1, len(updates) + 1))
    assert updates[0]["status"] == "received" and updates[-1]["status"] == "completed"
    assert updates[-1]["output"] == {"slept": 3}
    assert [u["progress"] for u in updates[1:4]] == [{"current": i, "total": 3} for i in range(3)]
    assert len({u["task_id"] for u in updates}) == 1
    assert done.stderr == ""


def test_a_cancelled_task_exits_3(env: dict[str, str], client: Client) -> None:
    process = start(["run", "infsh/sleep", "--input", LONG, "--json"], env)
    assert process.stdout is not None
    first = json.loads(read_until(process.stdout, lambda line: True))
    client.tasks.cancel(first["task_id"])
    assert process.wait(10) == 3


def test_a_timeout_exits_4_and_leaves_the_task_running(env: dict[str, str], client: Client) -> None:
    started = time.monotonic()
    done = infsh(["run", "infsh/sleep", "--input", LONG, "--timeout", "0.5"], env)
    assert done.returncode == 4, done.stderr
    assert time.monotonic() - started < 8
    task_id = done.stderr.split()[1].rstrip(":")
    assert "timed out after 0.5 s" in done.stderr and f"infsh cancel {task_id}" in done.stderr
    assert client.tasks.get(task_id).status is TaskStatus.RUNNING
    client.tasks.cancel(task_id)


@pytest.mark.parametrize(
    "args",
    [
        ["run", "infsh/echo", "--input", "{not json"],
        ["run", "infsh/echo", "--input", "[1, 2]"],
        ["run", "infsh/echo", "--input-file", "/nonexistent/input.json"],
        ["run", "infsh/echo", "--input", "{}", "--input-file", "-"],
        ["run", "infsh/echo", "--timeout", "soon"],
        ["run", "infsh/echo", "--timeout", "0"],
        ["run", "infsh/echo", "--json", "--stream"],
        ["get", "a/b"],
        ["cancel", "../../etc/passwd"],
        ["stream", "tsk 1"],
        ["run"],
        ["stream", "tsk_1", "--last-event-id", "-1"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(env: dict[str, str], server: LocalServer, args: list[str]) -> None:
    server.clear_requests()
    done = infsh(args, env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip()
    assert server.requests == []  # nothing was sent


def test_api_errors_exit_5(env: dict[str, str], client: Client) -> None:
    done = infsh(["run", "nobody/nothing"], env)
    assert done.returncode == 5 and "NotFoundError" in done.stderr and "nobody/nothing" in done.stderr
    assert infsh(["get", "tsk_nope"], env).returncode == 5
    finished = client.run({"app": "infsh/echo", "input": {}})
    done = infsh(["cancel", finished.id], env)
    assert done.returncode == 5 and "409" in done.stderr  # cancelling a finished task conflicts
    with LocalServer(api_key="another-key") as locked:
        done = infsh(["--base-url", locked.url, "run", "infsh/echo"], env)
    assert done.returncode == 5 and "AuthenticationError" in done.stderr
    assert SECRET not in done.stderr + done.stdout


def test_get_and_cancel_print_the_task_as_json(env: dict[str, str], client: Client) -> None:
    task = client.run({"app": "infsh/sleep", "input": {"seconds": 300}}, wait=False)
    got = infsh(["get", task.id], env)
    assert got.returncode == 0 and json.loads(got.stdout)["status"] in ("received", "running")
    cancelled = infsh(["cancel", task.id], env)
    assert cancelled.returncode == 0
    shown = json.loads(cancelled.stdout)
    assert shown["id"] == task.id and shown["status"] == "cancelled" and shown["app"] == "infsh/sleep"
    assert client.tasks.get(task.id).status is TaskStatus.CANCELLED


def test_stream_follows_an_existing_task_from_a_last_event_id(env: dict[str, str], client: Client) -> None:
    task = client.run({"app": "infsh/sleep", "input": {"seconds": 2}})
    every = [json.loads(line) for line in infsh(["stream", task.id, "--json"], env).stdout.splitlines()]
    assert every[-1]["status"] == "completed"
    later = infsh(["stream", task.id, "--json", "--last-event-id", "2"], env)
    assert later.returncode == 0
    assert [json.loads(line) for line in later.stdout.splitlines()] == every[2:]
    # Resumed at the terminal event: nothing more to show, and the exit code still says completed.
    done = infsh(["stream", task.id, "--last-event-id", str(every[-1]["event_id"])], env)
    assert done.returncode == 0 and json.loads(done.stdout) == {"slept": 2}
    failed = client.run({"app": "infsh/fail", "input": {}}, wait=False)
    assert infsh(["stream", failed.id], env).returncode == 1


def test_ctrl_c_during_run_cancels_the_task_and_exits_130(env: dict[str, str], client: Client) -> None:
    process = start(["run", "infsh/sleep", "--input", LONG, "--stream"], env)
    assert process.stderr is not None
    task_id = read_until(process.stderr, lambda line: line.startswith("task ")).split()[1].rstrip(":")
    read_until(process.stderr, lambda line: "Sleeping for" in line)
    code, took = interrupt(process)
    rest = process.stderr.read()
    assert code == 130, rest
    assert took < 5  # prompt, although the task had 30 s to go
    assert f"cancelled task {task_id}" in rest
    assert client.tasks.get(task_id).status is TaskStatus.CANCELLED


def test_ctrl_c_during_stream_leaves_the_task_running(env: dict[str, str], client: Client) -> None:
    task = client.run({"app": "infsh/sleep", "input": {"seconds": 300}}, wait=False)
    process = start(["stream", task.id, "--json"], env)
    assert process.stdout is not None
    read_until(process.stdout, lambda line: '"running"' in line)
    code, took = interrupt(process)
    assert code == 130 and took < 5
    assert client.tasks.get(task.id).status is TaskStatus.RUNNING
    client.tasks.cancel(task.id)


def test_verbose_logs_requests_but_never_the_key(env: dict[str, str]) -> None:
    done = infsh(["--verbose", "run", "infsh/echo", "--input", '{"a": 1}', "--stream"], env)
    assert done.returncode == 0
    assert "POST /apps/run" in done.stderr and "DEBUG" in done.stderr  # verbose is on
    assert SECRET not in done.stdout + done.stderr
    done = infsh(["run", "infsh/echo", "-v"], env)  # also after the command name
    assert "DEBUG" in done.stderr and SECRET not in done.stdout + done.stderr


def test_verbose_does_not_log_every_event(env: dict[str, str]) -> None:
    done = infsh(["--verbose", "run", "infsh/count", "--input", '{"n": 200}', "--stream"], env)
    assert done.returncode == 0, done.stderr
    assert "Dispatching" not in done.stderr  # sseclient-py's line per event
    assert len(done.stderr.splitlines()) < 100  # requests and reconnects, not 200 events


def test_the_infsh_script_is_installed(env: dict[str, str]) -> None:
    script = Path(sys.executable).with_name("infsh")
    if not script.exists():
        pytest.skip("no infsh script next to this interpreter (not an installed environment)")
    done = subprocess.run(
        [str(script), "run", "infsh/echo", "--input", "{}"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and json.loads(done.stdout) == {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_relay_serves_with_the_key_kept_server_side(env: dict[str, str], server: LocalServer) -> None:
    pytest.importorskip("waitress", reason="the relay extra: pip install -e '.[relay]'")
    port = _free_port()
    process = start(["relay", "--port", str(port), "--upstream", server.url], env)
    assert process.stderr is not None
    try:
        read_until(process.stderr, lambda line: "upstream" in line)
        answer = requests.post(
            f"http://127.0.0.1:{port}/api/inference/proxy", json={"app": "infsh/echo", "input": {"x": 1}}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        assert SECRET not in answer.text
        assert server.requests[-1].authorization == f"Bearer {SECRET}"  # added by the relay, upstream only
    finally:
        code, _ = interrupt(process)
    output = (process.stdout.read() if process.stdout else "") + process.stderr.read()
    assert code in (0, 130)
    assert SECRET not in output


def test_a_reader_that_leaves_early_is_not_a_traceback(env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "inferencesh", "run", "infsh/count", "--input", '{"n": 20000}', "--json"]
    producer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert producer.stdout is not None and producer.stderr is not None
    assert producer.stdout.readline().startswith(b"{")
    producer.stdout.close()  # as `| head -1` does
    code = producer.wait(60)
    stderr = producer.stderr.read().decode()
    assert code == 141, stderr
    assert "Traceback" not in stderr
