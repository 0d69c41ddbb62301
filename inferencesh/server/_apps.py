"""The built-in apps: deterministic stand-ins for real inference apps.

An app is an input validator plus a coroutine that reports progress through
an ``AppContext`` and returns the output (or raises ``AppFailure``). Every
delay an app asks for is divided by the server's ``speed``.

=====================  =====================================================
``infsh/echo``         output = input, at once
``infsh/flux-schnell`` ``{"prompt", "steps"?=8}``: every status from received
                       to completed, logs, progress and previews per step,
                       ``{"image": "<url of the PNG on this server>"}``,
                       as the hosted service answers (~3.7 s)
``infsh/sleep``        ``{"seconds"}``: running, one progress tick per second
``infsh/fail``         ``{"message"?}``: a few log lines, then failed
``infsh/count``        ``{"n"}``: n running updates at full speed, then completed
``infsh/image-info``   ``{"image": "<url of a file uploaded to this server>"}``:
                       ``{"width", "height", "format"}`` (Pillow reads it)
=====================  =====================================================
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from . import _png
from ._assistant import words
from ._files import FileStore
from ._store import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PREPARING,
    QUEUED,
    RUNNING,
    SCHEDULED,
    SERVING,
    SETTING_UP,
    UPLOADING,
    Store,
    Task,
)


class AppFailure(Exception):
    """Raised by an app to end its task as failed with this message."""


class AppContext:
    """What a running app sees: scaled sleeps and a way to report changes."""

    def __init__(
        self, store: Store, task: Task, speed: float, files: Optional[FileStore] = None, base_url: str = ""
    ) -> None:
        self._store = store
        self._task = task
        self._speed = speed
        self._files = files
        self._base_url = base_url

    def publish(self, data: bytes, filename: str, content_type: str) -> str:
        """Store an output file on the server; returns its public URL (a data: URL without a file store)."""
        if self._files is None:
            return _png.data_url(data)
        return str(self._files.add(data, filename, content_type).describe(self._base_url)["uri"])

    def input_file(self, url: Any) -> Path:
        """The path on disk of a file uploaded to this server; ``AppFailure`` for anything else."""
        path = self._files.local_path(url) if self._files is not None and isinstance(url, str) else None
        if path is None:
            raise AppFailure(f"not a file uploaded to this server: {str(url)[:100]!r}")
        return path

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of app time (``seconds / speed`` real seconds)."""
        await asyncio.sleep(seconds / self._speed)

    @property
    def hosted(self) -> bool:
        """True when the server speaks the hosted dialect (the apps word their logs for it)."""
        return self._store.dialect == "hosted"

    def emit(self, **change: Any) -> None:
        """Report one change (``status``, ``progress``, ``logs``, ``partial_output``)."""
        self._store.update(self._task, **change)

    def delta(self, **pieces: Any) -> None:
        """Stream a piece of output (``response``/``reasoning`` text, ``usage``)."""
        self._store.delta(self._task, **pieces)


Validator = Callable[[Mapping[str, Any]], Optional[str]]
Runner = Callable[[AppContext, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class App:
    """A built-in app: ``validate`` returns an error text for a bad input."""

    name: str
    validate: Validator
    run: Runner


def _any_input(data: Mapping[str, Any]) -> str | None:
    return None


async def _echo(ctx: AppContext, data: dict[str, Any]) -> Any:
    ctx.emit(status=RUNNING, logs=["Echoing the input"])
    return data


def _check_flux(data: Mapping[str, Any]) -> str | None:
    if not isinstance(data.get("prompt"), str):
        return "'prompt' must be a string"
    steps = data.get("steps", 8)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 100:
        return "'steps' must be an integer from 1 to 100"
    return None


async def _flux(ctx: AppContext, data: dict[str, Any]) -> Any:
    prompt: str = data["prompt"]
    steps: int = data.get("steps", 8)
    ctx.emit(status=QUEUED, logs=["Queued for a local GPU"])
    await ctx.sleep(0.2)
    ctx.emit(status=SCHEDULED, logs=["Scheduled on worker local-0"])
    await ctx.sleep(0.2)
    ctx.emit(status=PREPARING, logs=["Preparing environment"])
    await ctx.sleep(0.3)
    ctx.emit(status=SERVING, logs=["Starting app server"])
    await ctx.sleep(0.2)
    # A simulation, and its logs say so (no "Loading model ..." where no model runs).
    ctx.emit(status=SETTING_UP, logs=["simulated FLUX.1-schnell: no model is loaded"])
    await ctx.sleep(0.5)
    image = _png.draw(prompt)
    started = "Drawing a placeholder image"
    ctx.emit(
        status=RUNNING,
        logs=[started, f"Generating {steps} steps"],
        progress={"current": 0, "total": steps},
    )
    for step in range(1, steps + 1):
        await ctx.sleep(0.25)
        line = tqdm.format_meter(step, steps, step * 0.25) if ctx.hosted else f"Step {step}/{steps}"
        ctx.emit(
            progress={"current": step, "total": steps},
            logs=[line],
            partial_output={"step": step, "preview": _png.preview(image, step, steps)},
        )
    ctx.emit(status=UPLOADING, logs=["Uploading image"])
    await ctx.sleep(0.3)
    return {"image": ctx.publish(_png.png_bytes(image), "image.png", "image/png")}


def _check_sleep(data: Mapping[str, Any]) -> str | None:
    seconds = data.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return "'seconds' must be a number from 0 to 86400"
    if not 0 <= seconds <= 86400:
        return "'seconds' must be a number from 0 to 86400"
    return None


async def _sleep(ctx: AppContext, data: dict[str, Any]) -> Any:
    seconds: float = data["seconds"]
    ticks = max(1, math.ceil(seconds))
    ctx.emit(status=RUNNING, logs=[f"Sleeping for {seconds} s"], progress={"current": 0, "total": ticks})
    for tick in range(1, ticks + 1):
        await ctx.sleep(seconds / ticks)
        ctx.emit(progress={"current": tick, "total": ticks})
    return {"slept": seconds}


def _check_fail(data: Mapping[str, Any]) -> str | None:
    if not isinstance(data.get("message", ""), str):
        return "'message' must be a string"
    return None


async def _fail(ctx: AppContext, data: dict[str, Any]) -> Any:
    ctx.emit(status=RUNNING, logs=["Starting job", "Processing input"])
    await ctx.sleep(0.1)
    ctx.emit(logs=["Something went wrong"])
    await ctx.sleep(0.1)
    raise AppFailure(data.get("message") or "Simulated failure")


def _check_count(data: Mapping[str, Any]) -> str | None:
    n = data.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 1_000_000:
        return "'n' must be an integer from 0 to 1000000"
    return None


async def _count(ctx: AppContext, data: dict[str, Any]) -> Any:
    n: int = data["n"]
    for current in range(1, n + 1):
        ctx.emit(status=RUNNING, progress={"current": current, "total": n})
        if current % 32 == 0:
            await asyncio.sleep(0)  # let streams and other requests run (every 256: ~0.1-0.2 s for theirs)
    return {"n": n}


def _check_llm(data: Mapping[str, Any]) -> str | None:
    if not isinstance(data.get("prompt"), str):
        return "'prompt' must be a string"
    if not isinstance(data.get("reasoning", False), bool):
        return "'reasoning' must be true or false"
    return None


#: Seconds before each streamed word of ``infsh/llm``, divided by the server's speed.
LLM_WORD_DELAY = 0.03


def llm_texts(prompt: str) -> tuple[str, str]:
    """What ``infsh/llm`` thinks and answers for ``prompt``: (reasoning, response)."""
    reasoning = f"The user wrote {len(prompt.split())} words. A short, plain answer fits."
    response = f'You said "{prompt}". This answer is simulated: no model is loaded.'
    return reasoning, response


async def _llm(ctx: AppContext, data: dict[str, Any]) -> Any:
    reasoning, response = llm_texts(data["prompt"])
    think = bool(data.get("reasoning", False))
    ctx.emit(status=RUNNING, logs=["simulated LLM: no model is loaded"])
    chunks = [("reasoning", word) for word in words(reasoning)] if think else []
    chunks += [("response", word) for word in words(response)]
    usage = {
        "prompt_tokens": len(data["prompt"].split()),
        "completion_tokens": len(chunks),
        "total_tokens": len(data["prompt"].split()) + len(chunks),
        "stop_reason": "stop",
    }
    for index, (kind, word) in enumerate(chunks):
        await ctx.sleep(LLM_WORD_DELAY)
        pieces: dict[str, Any] = {kind: word}
        if index == len(chunks) - 1:
            pieces["usage"] = usage
        ctx.delta(**pieces)
    output: dict[str, Any] = {"response": response}
    if think:
        output["reasoning"] = reasoning
    output["usage"] = usage
    return output


def _check_image_info(data: Mapping[str, Any]) -> str | None:
    if not isinstance(data.get("image"), str):
        return "'image' must be the URL of an uploaded file"
    return None


async def _image_info(ctx: AppContext, data: dict[str, Any]) -> Any:
    path = ctx.input_file(data["image"])
    ctx.emit(status=RUNNING, logs=["Reading the image"])
    try:
        with Image.open(path) as image:
            return {"width": image.width, "height": image.height, "format": image.format}
    except (UnidentifiedImageError, OSError) as exc:
        raise AppFailure(f"not an image Pillow can read: {exc}") from None


APPS: dict[str, App] = {
    app.name: app
    for app in (
        App("infsh/echo", _any_input, _echo),
        App("infsh/flux-schnell", _check_flux, _flux),
        App("infsh/sleep", _check_sleep, _sleep),
        App("infsh/fail", _check_fail, _fail),
        App("infsh/count", _check_count, _count),
        App("infsh/llm", _check_llm, _llm),
        App("infsh/image-info", _check_image_info, _image_info),
    )
}


async def run_task(
    store: Store, task: Task, app: App, speed: float, files: Optional[FileStore] = None, base_url: str = ""
) -> None:
    """Run ``app`` for ``task`` to its end: completed, failed, or cancelled.

    ``files`` and ``base_url``: where output files go and the base of their URLs.
    """
    ctx = AppContext(store, task, speed, files, base_url)
    try:
        output = await app.run(ctx, dict(task.input))
    except asyncio.CancelledError:
        if not store.stopping:
            store.update(task, status=CANCELLED, logs=["Task cancelled"])
        raise
    except AppFailure as exc:
        store.update(task, status=FAILED, logs=[f"Error: {exc}"], error=str(exc))
    except Exception as exc:  # an app bug must still end the task
        store.update(task, status=FAILED, error=f"internal error: {exc!r}")
    else:
        store.update(task, status=COMPLETED, logs=["Done"], output=output)


def start(
    store: Store, task: Task, app: App, speed: float, files: Optional[FileStore] = None, base_url: str = ""
) -> None:
    """Start ``app`` for ``task`` on the running loop; the handle is ``task.runner``."""
    task.runner = asyncio.get_running_loop().create_task(run_task(store, task, app, speed, files, base_url))
