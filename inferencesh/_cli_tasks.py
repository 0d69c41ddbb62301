"""The task commands of ``infsh``: ``run``, ``get``, ``cancel``, ``stream``.

Data goes to stdout (the output, a task as JSON, or one JSON object per
update with ``--json``); what is for people (statuses, log lines, the bar,
errors) goes to stderr, so ``infsh run ... > out.json`` and ``| jq`` work.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Optional

from ._errors import InferenceError, UsageError
from .client import Client, inference
from .files import File, save_outputs
from .models import TaskStatus, TaskUpdate
from .progress import _abort_reason, _Bar

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 3
EXIT_TIMEOUT = 4
EXIT_ERROR = 5
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE, as a shell reports a reader that left

_EXIT_BY_STATUS = {TaskStatus.COMPLETED: EXIT_OK, TaskStatus.FAILED: EXIT_FAILED, TaskStatus.CANCELLED: EXIT_CANCELLED}


def make_client(args: argparse.Namespace) -> Client:
    """A client for ``--base-url`` (else ``INFERENCE_BASE_URL``); the key only ever from ``INFERENCE_API_KEY``."""
    return inference(base_url=getattr(args, "base_url", None))


def read_input(args: argparse.Namespace) -> dict[str, Any]:
    """The task input from ``--input JSON`` or ``--input-file FILE`` (``-``: stdin); ``{}`` without either.

    A string value ``"@path"`` (nested included) becomes a ``File``: the run uploads it and sends its
    URL; ``"@@x"`` is the text ``"@x"``. Raises ``UsageError`` when the input cannot be read, is not a
    JSON object, or names a file that is not there.
    """
    if args.input_file is not None:
        try:
            if args.input_file == "-":
                text = sys.stdin.read()
            else:
                with open(args.input_file, encoding="utf-8") as handle:
                    text = handle.read()
        except OSError as exc:
            raise UsageError(f"cannot read --input-file {args.input_file}: {exc.strerror or exc}") from None
        where = f"--input-file {args.input_file}"
    elif args.input is not None:
        text, where = args.input, "--input"
    else:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f'{where} must be a JSON object like {{"prompt": "..."}}, not {type(value).__name__}')
    return dict(_file_values(value))


def _file_values(value: Any) -> Any:
    """The input with each ``"@path"`` string (nested included) as a ``File`` to upload; ``"@@x"`` is ``"@x"``.

    Raises ``UsageError`` when a named file is not there.
    """
    if isinstance(value, str) and value.startswith("@"):
        if value.startswith("@@"):
            return value[1:]
        file = File(value[1:]) if value[1:] else None
        if file is None or file.path is None or not file.path.is_file():
            raise UsageError(f"no such file for {value!r} (write @@ for a value that starts with @)")
        return file
    if isinstance(value, dict):
        return {key: _file_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_file_values(item) for item in value]
    return value


def update_json(update: TaskUpdate) -> dict[str, Any]:
    """One update as the JSON object ``--json`` prints (statuses by name)."""
    return {"event_id": update.event_id, **update.to_wire()}


def _print_json(value: Any, *, indent: Optional[int] = None) -> None:
    print(json.dumps(value, indent=indent, ensure_ascii=False), flush=True)


def _print_output(output: Any) -> None:
    if isinstance(output, str):
        print(output, flush=True)
    else:
        _print_json(output, indent=2)


def _remaining(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _show(stream: Any, out_json: bool) -> None:
    """Follow ``stream`` on the screen: NDJSON on stdout, or statuses, logs and a bar on stderr."""
    if out_json:
        for update in stream:
            _print_json(update_json(update))
        return
    bar = _Bar(enabled=sys.stderr.isatty(), file=sys.stderr)

    def say(line: str) -> None:
        if bar.enabled:
            bar.write(line)
        else:
            print(line, file=sys.stderr, flush=True)

    status: Optional[TaskStatus] = None
    try:
        for update in stream:
            if update.status != status:
                status = update.status
                say(f"status: {status}")
            for line in update.logs:
                say(f"  {line}")
            bar.draw(update)
    except BaseException as exc:
        bar.close(_abort_reason(exc))
        raise
    bar.close()


def _finish(client: Client, task_id: str, deadline: Optional[float], args: argparse.Namespace, live: bool) -> int:
    """Follow the task to its end, print what the mode asks for, return the exit code."""
    with client.tasks.stream(task_id, getattr(args, "last_event_id", None), timeout=_remaining(deadline)) as stream:
        if live or args.json:
            _show(stream, args.json)
        else:
            for _ in stream:
                pass
        final = stream.result
        task = stream.final_task
    if final is None and task is None:  # the stream ended without the terminal update: ask
        task = client.tasks.get(task_id, timeout=_remaining(deadline))
    status = final.status if final is not None else task.status if task is not None else TaskStatus.UNKNOWN
    output = final.output if final is not None else task.raw_output if task is not None else None
    if status is TaskStatus.COMPLETED and getattr(args, "save", None):
        for key, path in save_outputs(output, args.save, progress=sys.stderr.isatty()).items():
            print(f"saved {key}: {path}", file=sys.stderr, flush=True)
    if not args.json:
        if status is TaskStatus.COMPLETED:
            _print_output(output)
        elif status is TaskStatus.FAILED:
            error = final.error if final is not None else task.error if task is not None else None
            print(f"task {task_id} failed: {error or 'no error message'}", file=sys.stderr)
        elif status is TaskStatus.CANCELLED:
            print(f"task {task_id} was cancelled", file=sys.stderr)
    return _EXIT_BY_STATUS.get(status, EXIT_ERROR)


def cmd_run(args: argparse.Namespace) -> int:
    """``infsh run APP``: start a task and follow it; Ctrl-C cancels it on the server."""
    if args.json and args.stream:
        raise UsageError("--json prints the updates as JSON and --stream draws them for people: choose one")
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    config = {"app": args.app, "input": read_input(args)}
    with make_client(args) as client:
        task = client.run(config, wait=False, timeout=args.timeout)
        if not args.json:
            print(f"task {task.id}: {args.app}", file=sys.stderr, flush=True)
        try:
            return _finish(client, task.id, deadline, args, live=args.stream)
        except KeyboardInterrupt:
            _cancel_after_interrupt(client, task.id)
            raise


def _cancel_after_interrupt(client: Client, task_id: str) -> None:
    try:
        client.tasks.cancel(task_id, timeout=10.0)
        print(f"\ninterrupted: cancelled task {task_id}", file=sys.stderr)
    except InferenceError as exc:  # already finished, or the server is gone: say so, exit 130 anyway
        print(f"\ninterrupted: could not cancel task {task_id}: {exc}", file=sys.stderr)


def cmd_stream(args: argparse.Namespace) -> int:
    """``infsh stream ID``: follow an existing task (from ``--last-event-id N`` on); Ctrl-C leaves it running."""
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    with make_client(args) as client:
        return _finish(client, args.task_id, deadline, args, live=True)


def cmd_get(args: argparse.Namespace) -> int:
    """``infsh get ID``: print the task as JSON."""
    with make_client(args) as client:
        _print_json(client.tasks.get(args.task_id, timeout=args.timeout).to_wire(), indent=2)
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    """``infsh cancel ID``: cancel the task on the server and print it as JSON."""
    with make_client(args) as client:
        _print_json(client.tasks.cancel(args.task_id, timeout=args.timeout).to_wire(), indent=2)
    return EXIT_OK


def add_task_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``run``, ``get``, ``cancel`` and ``stream`` to the ``infsh`` sub-parsers."""
    run = commands.add_parser("run", parents=[common], help="run an app and wait for (or follow) its task")
    run.add_argument("app", metavar="APP", help="the app, e.g. infsh/flux-schnell")
    given = run.add_mutually_exclusive_group()
    given.add_argument("--input", metavar="JSON", help='the input as a JSON object, e.g. \'{"prompt": "a fox"}\'')
    given.add_argument(
        "--input-file",
        metavar="FILE",
        help="read the input JSON from FILE ('-': stdin); in either, a value \"@path\" uploads that file "
        "and sends its URL (\"@@x\": the text \"@x\")",
    )
    run.add_argument("--stream", action="store_true", help="show statuses, logs and a progress bar live")
    run.add_argument("--save", metavar="DIR", default=None, help="save the output's files (http(s) URLs) into DIR")
    _timeout_and_json(run)
    run.set_defaults(handler=cmd_run)

    stream = commands.add_parser("stream", parents=[common], help="follow an existing task live")
    stream.add_argument("task_id", metavar="ID")
    stream.add_argument("--last-event-id", type=_event_id, default=None, metavar="N", help="only updates after N")
    _timeout_and_json(stream)
    stream.set_defaults(handler=cmd_stream)

    for name, handler, text in (("get", cmd_get, "print a task as JSON"), ("cancel", cmd_cancel, "cancel a task")):
        command = commands.add_parser(name, parents=[common], help=text)
        command.add_argument("task_id", metavar="ID")
        command.add_argument("--timeout", type=_seconds, default=30.0, metavar="S", help="seconds (default 30)")
        command.set_defaults(handler=handler)


def _timeout_and_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=_seconds, default=None, metavar="S", help="give up after S seconds (exit 4)")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per update on stdout (NDJSON, for jq)"
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):  # 0 would time out at once: refused, not obeyed
        raise argparse.ArgumentTypeError(f"seconds must be a number > 0: {text!r}")
    return value


def _event_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"not an event id (an integer >= 0): {text!r}")
    return int(text)
