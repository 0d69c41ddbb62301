"""Commands whose extra is not installed: exit 2 with one line naming the install command, no traceback.

Each case runs ``python -m inferencesh`` in a subprocess whose ``sys.meta_path`` refuses the
extra's modules, so the missing-extra path is taken in any venv: the bare client's (``.ci/run``
runs this file there) and the full one. Needs nothing but the client itself.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Run before anything else in the child: imports of the modules named in argv[1] (comma-separated) fail.
BLOCKER = """
import sys

class Refuse:
    def __init__(self, names):
        self.names = set(names)

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Refuse(sys.argv.pop(1).split(",")))
"""

RUN_CLI = BLOCKER + "import runpy; sys.argv[0] = 'infsh'; runpy.run_module('inferencesh', run_name='__main__')\n"

SERVER_MODULES = ["starlette", "uvicorn", "sse_starlette", "PIL"]


def run(code: str, blocked: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter at the repository root, with the modules ``blocked`` refused."""
    try:
        return subprocess.run(
            [sys.executable, "-c", code, blocked, *args],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired as exc:  # the command started serving: the extra was not checked
        pytest.fail(f"{args} did not exit: {exc.stderr!r}")


@pytest.mark.parametrize(
    ("command", "extra", "blocked"),
    [("serve", "server", module) for module in SERVER_MODULES]
    + [("demo", "server", "PIL")]
    + [("relay", "relay", "waitress")],
)
def test_a_command_without_its_extra_exits_2_with_one_line(command: str, extra: str, blocked: str) -> None:
    done = run(RUN_CLI, blocked, command, "--port", "0") if command != "demo" else run(RUN_CLI, blocked, command)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f'infsh {command} needs the {extra} extra: pip install "inferencesh[{extra}]"\n'
    assert done.stdout == ""


@pytest.mark.parametrize("command", ["serve", "demo", "relay"])
def test_help_works_without_any_extra(command: str) -> None:
    done = run(RUN_CLI, ",".join([*SERVER_MODULES, "waitress"]), command, "--help")
    assert done.returncode == 0, done.stderr
    assert f"usage: infsh {command}" in done.stdout


def test_the_client_works_without_any_extra() -> None:
    code = BLOCKER + (
        "import inferencesh\n"
        "from inferencesh import inference\n"
        "from inferencesh.relay import make_relay\n"  # the WSGI app itself needs no extra; serving it does
        "with inference(api_key='k', base_url='http://127.0.0.1:9') as client:\n"
        "    print(type(make_relay(client)).__name__, inferencesh.__version__ != '')\n"
    )
    done = run(code, ",".join([*SERVER_MODULES, "waitress"]))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Relay True\n"


@pytest.mark.parametrize("blocked", SERVER_MODULES)
def test_importing_the_server_without_its_extra_names_the_install_command(blocked: str) -> None:
    code = BLOCKER + (
        "try:\n"
        "    from inferencesh.server import LocalServer\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc.name, exc, sep='|')\n"
    )
    done = run(code, blocked)
    assert done.returncode == 0, done.stderr
    kind, name, message = done.stdout.rstrip("\n").split("|")
    assert kind == "ModuleNotFoundError"  # still an ImportError, for code that catches ImportError
    installed = all(importlib.util.find_spec(module) for module in SERVER_MODULES)
    assert name == blocked if installed else name in SERVER_MODULES  # the bare client misses them all
    assert message == (
        f'inferencesh.server needs the server extra (no module named {name!r}): pip install "inferencesh[server]"'
    )


def test_serving_the_relay_without_its_extra_names_the_install_command() -> None:
    code = BLOCKER + (
        "from inferencesh.relay import RelayServer, serve_relay\n"
        "for call in (lambda: RelayServer(lambda e, s: []), lambda: serve_relay(port=0)):\n"
        "    try:\n"
        "        call()\n"
        "    except ImportError as exc:\n"
        "        print(type(exc).__name__, exc.name, exc, sep='|')\n"
    )
    done = run(code, "waitress")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line == (
            "ModuleNotFoundError|waitress|serving the relay needs the relay extra (no module named 'waitress'): "
            'pip install "inferencesh[relay]"'
        )
