"""The ``infsh`` command (also ``python -m inferencesh``).

Exit codes: 0 completed, 1 task failed, 2 usage error, 3 task cancelled,
4 timeout, 5 API or connection error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Optional

from ._version import __version__

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 3
EXIT_TIMEOUT = 4
EXIT_ERROR = 5
EXIT_INTERRUPTED = 130

EPILOG = """exit codes:
  0 completed, 1 task failed, 2 usage error, 3 task cancelled,
  4 timeout, 5 API or connection error, 130 interrupted

environment:
  INFERENCE_API_KEY   the API key (never printed)
  INFERENCE_BASE_URL  the server (default https://api.inference.sh)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infsh",
        description="Run inference.sh apps and follow them live.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"inferencesh {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    serve = commands.add_parser("serve", help="run the local protocol server in the foreground")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    serve.add_argument("--api-key", default=None, help="require this key (default: accept any key)")
    serve.add_argument("--speed", type=float, default=1.0, help="divide app delays by this (default 1)")
    serve.set_defaults(handler=_serve)

    demo = commands.add_parser("demo", help="stream a real task from an embedded local server")
    demo.add_argument("--prompt", default="A sunset timelapse over the sea", help="the image prompt")
    demo.add_argument("--out", default=None, help="where to save the PNG (default ./infsh-demo.png)")
    demo.add_argument("--flaky", action="store_true", help="inject connection drops and show the resume")
    demo.add_argument("--speed", type=float, default=1.0, help="divide app delays by this (default 1)")
    demo.set_defaults(handler=_demo)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from .server import serve

    serve(host=args.host, port=args.port, api_key=args.api_key, speed=args.speed)
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    run_demo(args.prompt, args.out, flaky=args.flaky, speed=args.speed)
    return EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code
