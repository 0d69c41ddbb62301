"""progress=True / "always": a tqdm bar with the status, the count and the log lines, closed on every ending."""

from __future__ import annotations

import io
import os
import signal
import threading
from typing import Any, Optional

import pytest
from tqdm.auto import tqdm

import inferencesh
from inferencesh import CancelToken, Client, TaskStatus
from inferencesh.progress import follow

from .conftest import flux

STALL = {"app": "infsh/sleep", "input": {"seconds": 1, "_faults": [{"kind": "stall", "after": 2, "seconds": 30}]}}


def open_bars() -> int:
    return len(getattr(tqdm, "_instances", ()))


def test_a_forced_bar_shows_status_count_and_logs(client: Client) -> None:
    out = io.StringIO()
    with follow(client.run(flux(), stream=True), force=True, file=out) as stream:
        assert open_bars() == 0  # made on the first update
        updates = list(stream)
    text = out.getvalue()
    assert updates[-1].status is TaskStatus.COMPLETED
    for status in ("queued", "setting_up", "running", "uploading", "completed"):
        assert f"{status}:" in text, text  # the description is the status
    assert "8/8" in text and "3/8" in text  # the count is progress.current/total
    assert "Step 3/8\n" in text and "Drawing a placeholder image\n" in text  # log lines on lines of their own
    assert text.index("Drawing a placeholder image") < text.rindex("completed")
    assert open_bars() == 0


def test_run_progress_always_blocking_and_streaming(client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    task = client.run(flux(), progress="always")
    assert task.status is TaskStatus.COMPLETED
    err = capsys.readouterr().err
    assert "completed:" in err and "Step 8/8" in err
    updates = list(client.run(flux(), stream=True, progress="always"))
    assert updates[-1].status is TaskStatus.COMPLETED
    err = capsys.readouterr().err
    assert "running:" in err and "Generating 8 steps" in err
    assert open_bars() == 0


def test_progress_true_draws_nothing_when_stderr_is_not_a_terminal(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    client.run(flux(), progress=True)
    for _ in client.run(flux(), stream=True, progress=True):
        pass
    assert capsys.readouterr() == ("", "")


def test_a_bad_progress_value_is_a_usage_error(client: Client, server: Any) -> None:
    server.clear_requests()
    with pytest.raises(inferencesh.UsageError):
        client.run(flux(), progress="yes")  # type: ignore[call-overload]
    assert server.requests == []


def test_the_bar_is_closed_when_the_task_fails(client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    task = client.run({"app": "infsh/fail", "input": {"message": "no GPU"}}, progress="always")
    with pytest.raises(inferencesh.TaskFailed):
        task.output  # noqa: B018
    err = capsys.readouterr().err
    assert "failed:" in err and "Error: no GPU" in err
    assert open_bars() == 0


@pytest.mark.parametrize("ending", ["timeout", "cancelled", "interrupted", "break"])
def test_the_bar_is_closed_on_every_abort(client: Client, ending: str) -> None:
    out = io.StringIO()
    token = CancelToken()
    stream = follow(
        client.run(STALL, stream=True, timeout=0.8 if ending == "timeout" else None, cancel=token), force=True, file=out
    )
    expected: Optional[type[BaseException]] = {
        "timeout": inferencesh.StreamTimeout,
        "cancelled": inferencesh.Cancelled,
        "interrupted": KeyboardInterrupt,
        "break": None,
    }[ending]
    seen: list[int] = []

    def loop() -> None:
        for update in stream:
            seen.append(open_bars())
            if update.event_id == 2:  # the stall begins: nothing more for 30 s
                if ending == "cancelled":
                    token.cancel_after(0.2)
                elif ending == "interrupted":  # Ctrl-C while the read is blocked
                    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
                elif ending == "break":
                    break

    if expected is None:
        loop()  # break: the loop's stream is left, and the bar goes with it
    else:
        with pytest.raises(expected):
            loop()
    assert seen and all(count == 1 for count in seen)  # one bar, open while the loop ran
    assert open_bars() == 0
    if ending != "break":
        assert f"{ending}:" in out.getvalue().rsplit("\r", 1)[-1]  # the last drawing says why


def test_a_bar_keeps_the_timeout_and_the_cancel_token_of_its_run(
    client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    # The wrapped stream once closed the shared deadline when it was dropped: the bar then waited out the stall.
    with pytest.raises(inferencesh.StreamTimeout):
        for _ in client.run(STALL, stream=True, timeout=0.8, progress="always"):
            pass
    token = CancelToken()
    token.cancel_after(0.8)
    with pytest.raises(inferencesh.Cancelled):
        client.run(STALL, cancel=token, progress="always")
    err = capsys.readouterr().err
    assert "timeout:" in err and "cancelled:" in err
    assert open_bars() == 0


def test_a_task_without_progress_shows_a_status_spinner_not_an_empty_count(client: Client) -> None:
    out = io.StringIO()
    with follow(client.run({"app": "infsh/echo", "input": {"x": 1}}, stream=True), force=True, file=out) as stream:
        list(stream)
    text = out.getvalue()
    assert "completed:" in text
    assert "step [" not in text and "?step/s" not in text, text
