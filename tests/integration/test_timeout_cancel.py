"""Issue C: ``timeout=`` and ``CancelToken`` end a stream promptly, wherever it is blocked.

Against the real local server: a silent server (stall fault), a reconnect, a
backoff wait (503 with a long ``Retry-After``), a token shared by three
streams, ``cancel_task_on_abort``, resuming after a cancel without loss, and
nothing left behind (no watchdog thread, no open connection). The client's
idle limit is long (2 × 5 s) here, so only the watchdog can end these reads.
Bounds are generous: a 0.5 s deadline must raise within 2 s of it.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from inferencesh import Cancelled, CancelToken, Client, StreamTimeout, TaskStatus, inference
from inferencesh.server import LocalServer
from tests.helpers import wait_until

from .conftest import SECRET, sdk_threads

pytestmark = pytest.mark.timeout(60)

STALL = {"kind": "stall", "after": 1, "seconds": 4}
SLACK = 2.0  # seconds an abort may take beyond its moment, on a loaded machine


@pytest.fixture()
def patient(server: LocalServer) -> Iterator[Client]:
    """A client whose idle read limit (10 s) is far beyond every abort here."""
    with inference(
        api_key=SECRET, base_url=server.url, heartbeat_interval=5.0, backoff_initial=0.02, backoff_max=0.2
    ) as made:
        yield made


def sleeper(seconds: float = 200, faults: Any = None) -> dict[str, Any]:
    """infsh/sleep at the server's speed 200: ``seconds`` of app time, ticks every 5 ms."""
    task_input: dict[str, Any] = {"seconds": seconds}
    if faults is not None:
        task_input["_faults"] = faults
    return {"app": "infsh/sleep", "input": task_input}


def stalled(**kwargs: Any) -> dict[str, Any]:
    return sleeper(faults=[STALL], **kwargs)


def abort_time(action: Any, error: type[BaseException]) -> float:
    """Run ``action`` until it raises ``error``; seconds it took."""
    started = time.monotonic()
    with pytest.raises(error):
        action()
    return time.monotonic() - started


def drain(stream: Any) -> list[Any]:
    return list(stream)


def test_timeout_on_a_silent_server(patient: Client) -> None:
    elapsed = abort_time(lambda: drain(patient.run(stalled(), stream=True, timeout=0.5)), StreamTimeout)
    assert elapsed < 0.5 + SLACK


def test_timeout_in_blocking_mode(patient: Client) -> None:
    assert abort_time(lambda: patient.run(stalled(), timeout=0.5), StreamTimeout) < 0.5 + SLACK


def test_timeout_spans_a_reconnect(server: LocalServer, patient: Client) -> None:
    # Dropped after event 1; the reconnect delivers 2 and 3, then the server goes silent.
    faults = [{"kind": "close", "after": 1}, {"kind": "stall", "after": 2, "seconds": 4}]
    server.clear_requests()
    stream = patient.run(sleeper(faults=faults), stream=True, timeout=1.0)
    seen: list[int] = []

    def follow() -> None:
        for update in stream:
            seen.append(update.event_id)

    assert abort_time(follow, StreamTimeout) < 1.0 + SLACK
    assert seen == [1, 2, 3]
    assert len([r for r in server.requests if r.path.endswith("/stream")]) == 2


def test_timeout_cuts_a_backoff_wait(server: LocalServer, patient: Client) -> None:
    # LocalServer answers the first stream requests of the task with 503 and Retry-After: 30.
    faults = [{"kind": "status", "code": 503, "retry_after": 30, "times": 3}]
    elapsed = abort_time(lambda: drain(patient.run(sleeper(faults=faults), stream=True, timeout=1.0)), StreamTimeout)
    assert elapsed < 1.0 + SLACK


def test_cancel_from_another_thread(patient: Client) -> None:
    token = CancelToken()
    stream = patient.run(stalled(), stream=True, cancel=token)
    assert next(stream).event_id == 1
    threading.Timer(0.3, token.cancel).start()
    assert abort_time(lambda: drain(stream), Cancelled) < 0.3 + SLACK


def test_cancel_after(patient: Client) -> None:
    token = CancelToken()
    token.cancel_after(0.3)
    assert abort_time(lambda: drain(patient.run(stalled(), stream=True, cancel=token)), Cancelled) < 0.3 + SLACK
    assert token.cancelled


def test_cancel_during_a_backoff_wait(server: LocalServer, patient: Client) -> None:
    faults = [{"kind": "status", "code": 503, "retry_after": 30, "times": 3}]
    token = CancelToken()
    stream = patient.run(sleeper(faults=faults), stream=True, cancel=token)
    threading.Timer(0.5, token.cancel).start()
    assert abort_time(lambda: drain(stream), Cancelled) < 0.5 + SLACK
    answers = [r.status for r in server.requests if r.path == f"/tasks/{stream.task_id}/stream"]
    assert answers == [503]  # cancelled in the 30 s wait after it


def test_cancel_in_the_loop_stops_before_buffered_updates(patient: Client) -> None:
    token = CancelToken()
    stream = patient.run({"app": "infsh/count", "input": {"n": 2000}}, stream=True, cancel=token)
    seen = []
    with pytest.raises(Cancelled):
        for update in stream:
            seen.append(update.event_id)
            if len(seen) == 3:
                token.cancel()
    assert seen == [1, 2, 3]  # nothing more, though thousands were already on the wire


def test_one_token_shared_by_three_streams(patient: Client) -> None:
    token = CancelToken()
    outcomes: dict[int, BaseException] = {}
    started = threading.Barrier(4)

    def follow(index: int) -> None:
        stream = patient.run(stalled(), stream=True, cancel=token)
        try:
            next(stream)
            started.wait(10)
            drain(stream)
        except BaseException as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=follow, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    started.wait(10)
    time.sleep(0.2)
    cancelled_at = time.monotonic()
    token.cancel()
    for thread in threads:
        thread.join(10)
    assert time.monotonic() - cancelled_at < SLACK
    assert sorted(outcomes) == [0, 1, 2]
    assert all(isinstance(error, Cancelled) for error in outcomes.values())


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_cancel_task_on_abort_cancels_the_task_on_the_server(patient: Client, how: str) -> None:
    token = CancelToken()
    if how == "cancel":
        token.cancel_after(0.3)
        stream = patient.run(stalled(), stream=True, cancel=token, cancel_task_on_abort=True)
        error: type[BaseException] = Cancelled
    else:
        stream = patient.run(stalled(), stream=True, timeout=0.3, cancel_task_on_abort=True)
        error = StreamTimeout
    with pytest.raises(error):
        drain(stream)
    assert wait_until(lambda: patient.tasks.get(stream.task_id).status == TaskStatus.CANCELLED)


def test_without_cancel_task_on_abort_the_task_keeps_running(patient: Client) -> None:
    with pytest.raises(StreamTimeout):
        drain(stream := patient.run(stalled(), stream=True, timeout=0.3))
    assert not patient.tasks.get(stream.task_id).is_terminal
    patient.tasks.cancel(stream.task_id)


def test_resume_after_a_cancel_loses_nothing(patient: Client) -> None:
    token = CancelToken()
    stream = patient.run(sleeper(seconds=40), stream=True, cancel=token)
    first: list[Any] = []
    with pytest.raises(Cancelled):
        for update in stream:
            first.append(update)
            if len(first) == 5:
                token.cancel()  # from the loop itself: the next read raises
    assert stream.last_event_id == 5
    rest = list(patient.tasks.stream(stream.task_id, last_event_id=stream.last_event_id))
    ids = [u.event_id for u in first + rest]
    assert ids == list(range(1, len(ids) + 1))
    assert rest[-1].is_terminal
    logs = [line for u in first + rest for line in u.logs]
    assert logs == list(patient.tasks.get(stream.task_id).logs)


def test_nothing_is_left_behind(server: LocalServer) -> None:
    assert wait_until(lambda: not sdk_threads(), timeout=5)
    baseline = server.open_connections
    with inference(api_key=SECRET, base_url=server.url, heartbeat_interval=5.0) as client:
        token = CancelToken()
        token.cancel_after(0.3)
        with pytest.raises(Cancelled):
            drain(client.run(stalled(), stream=True, cancel=token, cancel_task_on_abort=True))
        with pytest.raises(StreamTimeout):
            drain(client.run(stalled(), stream=True, timeout=0.3, cancel_task_on_abort=True))
        stream = client.run(stalled(), stream=True, timeout=30)
        next(stream)
        stream.close()
    # The watchdog thread goes once no timer is pending; stream sockets were discarded, pooled ones closed.
    assert wait_until(lambda: not sdk_threads(), timeout=5), sdk_threads()
    assert wait_until(lambda: server.open_connections <= baseline, timeout=5), server.open_connections


def _sockets_to(port: int) -> int:
    return sum(1 for c in psutil.Process().net_connections(kind="tcp") if c.raddr and c.raddr.port == port)


def test_close_releases_pooled_connections_at_once(server: LocalServer) -> None:
    """Not when the garbage collector gets round to it: a drop leaves a cycle that holds the pool."""
    port = int(server.url.rsplit(":", 1)[1])
    baseline = server.open_connections
    gc.disable()
    try:
        with inference(api_key=SECRET, base_url=server.url, heartbeat_interval=5.0, backoff_initial=0.02) as client:
            stream = client.run(sleeper(seconds=20, faults=[{"kind": "close", "after": 2}]), stream=True, timeout=30)
            assert [u.event_id for u in stream][-1] > 2  # resumed after the drop
            client.tasks.get(stream.task_id)  # leaves a keep-alive connection in the pool
        assert _sockets_to(port) == 0
        assert wait_until(lambda: server.open_connections <= baseline, timeout=5), server.open_connections
    finally:
        gc.enable()
