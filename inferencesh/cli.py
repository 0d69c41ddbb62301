"""The ``infsh`` command (also ``python -m inferencesh``).

Commands: ``run``, ``stream``, ``get``, ``cancel`` (in ``_cli_tasks``), and
``serve``, ``demo``, ``relay``. The API key is read from
``INFERENCE_API_KEY`` only and never printed, not even with ``--verbose``.

Exit codes: 0 completed, 1 task failed, 2 usage error, 3 task cancelled,
4 timeout, 5 API or connection error, 130 interrupted, 141 stdout closed by its reader.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Optional

from ._cli_tasks import (
    EXIT_CANCELLED,
    EXIT_CLOSED_PIPE,
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    add_task_commands,
)
from ._errors import Cancelled, InferenceError, StreamTimeout, TaskCancelled, TaskFailed, UsageError
from ._version import __version__

__all__ = [
    "EXIT_CANCELLED",
    "EXIT_CLOSED_PIPE",
    "EXIT_ERROR",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "build_parser",
    "main",
]

EPILOG = """exit codes:
  0    the task completed (or the command succeeded)
  1    the task failed
  2    usage error (bad arguments, input that is not a JSON object, a command's extra not installed)
  3    the task was cancelled
  4    timeout (--timeout passed; the task keeps running)
  5    API or connection error (unknown app or task, 401, server unreachable)
  130  interrupted (Ctrl-C; `infsh run` then cancels the task it started)
  141  the reader of stdout went away (`| head`); the task keeps running

environment:
  INFERENCE_API_KEY   the API key (never printed, not even with --verbose)
  INFERENCE_BASE_URL  the server (default https://api.inference.sh; --base-url wins)
"""


def _common(defaults: bool) -> argparse.ArgumentParser:
    """``--base-url`` and ``--verbose``, accepted before and after the command name."""
    default = (lambda value: value) if defaults else (lambda value: argparse.SUPPRESS)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--base-url", default=default(None), metavar="URL", help="the API server (INFERENCE_BASE_URL)")
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default(False),
        help="log requests, retries and reconnects on stderr",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The ``infsh`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="infsh",
        description="Run inference.sh apps and follow them live.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"inferencesh {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    common = _common(defaults=False)
    add_task_commands(commands, common)

    serve = commands.add_parser("serve", parents=[common], help="run the local protocol server in the foreground")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    serve.add_argument("--api-key", default=None, help="require this key (default: accept any key)")
    serve.add_argument("--speed", type=float, default=1.0, help="divide app delays by this (default 1)")
    serve.add_argument(
        "--dialect",
        choices=("v1", "hosted"),
        default="v1",
        help="the wire dialect: v1 (docs/PROTOCOL.md, default) or hosted (the hosted API's)",
    )
    serve.set_defaults(handler=_serve)

    demo = commands.add_parser("demo", parents=[common], help="stream a real task from an embedded local server")
    demo.add_argument("--prompt", default="A sunset timelapse over the sea", help="the image prompt")
    demo.add_argument("--out", default=None, help="where to save the PNG (default ./infsh-demo.png)")
    demo.add_argument("--flaky", action="store_true", help="inject connection drops and show the resume")
    demo.add_argument("--speed", type=float, default=1.0, help="divide app delays by this (default 1)")
    demo.add_argument(
        "--dialect",
        choices=("v1", "hosted"),
        default="hosted",
        help="the wire dialect the embedded server speaks (default hosted, as the hosted API)",
    )
    demo.set_defaults(handler=_demo)

    relay = commands.add_parser("relay", parents=[common], help="serve the browser relay (the key stays server-side)")
    relay.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    relay.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    relay.add_argument("--upstream", default=None, metavar="URL", help="the API server (default: --base-url)")
    relay.set_defaults(handler=_relay)
    return parser


#: The modules each extra brings (setup.cfg), for the commands that need them.
_EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "server": ("starlette", "uvicorn", "sse_starlette", "PIL"),
    "relay": ("waitress",),
}


def _missing_extra(command: str, extra: str) -> Optional[str]:
    """The one line to print when a module of ``extra`` cannot be imported, else ``None``."""
    for module in _EXTRA_MODULES[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            return f'infsh {command} needs the {extra} extra: pip install "inferencesh[{extra}]"'
    return None


def _serve(args: argparse.Namespace) -> int:
    missing = _missing_extra("serve", "server")
    if missing:
        print(missing, file=sys.stderr)
        return EXIT_USAGE
    from .server import serve

    serve(host=args.host, port=args.port, api_key=args.api_key, speed=args.speed, dialect=args.dialect)
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    missing = _missing_extra("demo", "server")
    if missing:
        print(missing, file=sys.stderr)
        return EXIT_USAGE
    from ._demo import run_demo

    run_demo(args.prompt, args.out, flaky=args.flaky, speed=args.speed, dialect=args.dialect)
    return EXIT_OK


def _relay(args: argparse.Namespace) -> int:
    missing = _missing_extra("relay", "relay")
    if missing:
        print(missing, file=sys.stderr)
        return EXIT_USAGE
    try:
        relay = importlib.import_module("inferencesh.relay")
    except ImportError as exc:
        print(f"infsh relay: not available in this install ({exc})", file=sys.stderr)
        return EXIT_ERROR
    relay.serve_relay(
        host=args.host,
        port=args.port,
        upstream=args.upstream or args.base_url,
        api_key=os.environ.get("INFERENCE_API_KEY") or None,
    )
    return EXIT_OK


class _Redacting(logging.Formatter):
    """Never lets the key into a log line, whatever a library puts in a message."""

    def __init__(self, secret: Optional[str]) -> None:
        super().__init__("%(asctime)s %(name)s %(levelname)s %(message)s")
        self._secret = secret

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text.replace(self._secret, "***") if self._secret else text


def _verbose() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Redacting(os.environ.get("INFERENCE_API_KEY") or None))
    for name in ("inferencesh", "urllib3"):  # the SDK's reconnects and retries; each request's line
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)


def _fail(message: str, code: int) -> int:
    print(f"infsh: {message}", file=sys.stderr)
    return code


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return its exit code (see ``EPILOG``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        _verbose()
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader (``| head``) left: stop quietly, and keep Python from failing on the final flush.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_CLOSED_PIPE
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except StreamTimeout as exc:
        seconds = getattr(args, "timeout", None) or exc.timeout
        message = f"timed out after {seconds:g} s"
        if exc.task_id:
            message += f"; task {exc.task_id} keeps running (infsh stream / infsh cancel {exc.task_id})"
        return _fail(message, EXIT_TIMEOUT)
    except TaskFailed as exc:
        return _fail(str(exc), EXIT_FAILED)
    except (TaskCancelled, Cancelled) as exc:
        return _fail(str(exc), EXIT_CANCELLED)
    except InferenceError as exc:
        return _fail(f"{type(exc).__name__}: {exc}", EXIT_ERROR)
    return code
