"""examples/_connect.py: the real service when a key is set and no base URL; the simulation only when asked."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest
import requests

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REAL_SERVICE = "https://api.inference.sh"  # the SDK's default base URL (README, client docstring)


@pytest.fixture()
def connect_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """examples/_connect.py, imported as an example imports it, with no ``--local`` on the command line."""
    monkeypatch.setattr(sys, "argv", ["example.py"])
    spec = importlib.util.spec_from_file_location("examples_connect_under_test", EXAMPLES / "_connect.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any request the client would send fails the test instead of leaving the machine."""

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        pytest.fail("the client sent a request")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", refuse)


def test_a_key_and_no_base_url_talk_to_the_real_service(
    connect_module: ModuleType, no_network: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFERENCE_API_KEY", "inf_a_real_key")
    monkeypatch.delenv("INFERENCE_BASE_URL", raising=False)
    with connect_module.connect() as client:
        assert client.base_url == REAL_SERVICE
    assert capsys.readouterr().out == ""  # nothing said: it is the real service


@pytest.mark.parametrize(
    ("local", "environ", "expected"),
    [
        (False, {"INFERENCE_API_KEY": "k"}, (False, None, None)),
        (False, {"INFERENCE_API_KEY": "k", "INFERENCE_BASE_URL": ""}, (False, None, None)),
        (
            False,
            {"INFERENCE_API_KEY": "k", "INFERENCE_BASE_URL": "https://eu.example"},
            (False, "https://eu.example", None),
        ),
        (False, {}, (True, None, "set INFERENCE_API_KEY to use the real service")),
        (False, {"INFERENCE_API_KEY": ""}, (True, None, "set INFERENCE_API_KEY to use the real service")),
        (True, {"INFERENCE_API_KEY": "k"}, (True, None, "drop --local to use the real service")),
        (True, {"INFERENCE_BASE_URL": "https://eu.example"}, (True, None, "drop --local to use the real service")),
        (
            False,
            {"INFERENCE_API_KEY": "k", "INFERENCE_BASE_URL": "http://127.0.0.1:8765"},
            (False, "http://127.0.0.1:8765", "unset INFERENCE_BASE_URL to use the real service"),
        ),
        (
            False,
            {"INFERENCE_BASE_URL": "http://localhost:8765"},
            (False, "http://localhost:8765", "unset INFERENCE_BASE_URL to use the real service"),
        ),
    ],
)
def test_choose(connect_module: ModuleType, local: bool, environ: dict[str, str], expected: tuple[Any, ...]) -> None:
    assert tuple(connect_module.choose(local, environ)) == expected


def test_the_local_flag_is_taken_out_of_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    """An example's own argparse never sees ``--local``; ``connect()`` still knows it was given."""
    monkeypatch.setattr(sys, "argv", ["dask_fanout.py", "--tasks", "2", "--local"])
    spec = importlib.util.spec_from_file_location("examples_connect_local_flag", EXAMPLES / "_connect.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert sys.argv == ["dask_fanout.py", "--tasks", "2"]
    assert module._LOCAL_ASKED is True
