"""Agent chats on the local server: chats, turns, tool calls, stop, and their routes.

A chat is created by its first ``POST /agents/run`` and remembers every user
message sent to it. Each run starts a turn: a numbered ``EventLog`` of SSE
blocks (ids from 1 again) that the scripted assistant (``_assistant``) fills
while ``GET /chats/{id}/stream`` serves it with the same replay, heartbeats
and connection faults as a task stream (``_stream.stream_response``). A
``tool_call`` parks the turn on a future that ``POST /tools/{id}`` resolves;
``POST /chats/{id}/stop`` ends the turn with ``done`` ``cancelled``. A turn
whose ``done`` is sent closes its log, which ends its streams.

Choices where PROTOCOL.md is silent: a run on a chat whose turn is still
going is ``409`` (stop it first); stopping a chat with no turn going is a
no-op answered ``200``; a tool result for a call whose turn is over is
``409``; ``Idempotency-Key`` on ``POST /agents/run`` is honoured like on
``/apps/run``. Everything runs on the server's event loop.

The chats, turns, tool waits and the script are shared by both dialects; a
``ChatWriter`` says how a turn is written on the wire (``V1ChatWriter``
here, the hosted one in ``_hosted_chats``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, cast

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._assistant import AssistantFailed, Voice, assistant
from ._events import EventLog
from ._faults import CONNECTION_KINDS, FaultSpec, TaskFaults, parse_faults
from ._store import Store, encode_event
from ._stream import stream_response

if TYPE_CHECKING:
    from ._app import ServerState

AGENT = "infsh/assistant"
#: Fault kinds a turn accepts in its run input's ``_faults``.
TURN_FAULT_KINDS = CONNECTION_KINDS | {"status", "overlap"}
#: Seconds before each thinking chunk and each answer word, divided by the server's speed.
THINK_DELAY = 0.05
WORD_DELAY = 0.03
#: How often the chats look for the server's shutdown (to end waits for tool results).
_SHUTDOWN_POLL = 0.05


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


class ToolWait:
    """A tool call the assistant waits on until ``POST /tools/{id}`` answers it."""

    __slots__ = ("answered", "future", "id", "turn")

    def __init__(self, turn: Turn) -> None:
        self.id = _new_id("call_")
        self.turn = turn
        self.future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.answered = False


class Turn:
    """One assistant turn: its message id, event log, armed faults and outcome."""

    def __init__(self, faults: TaskFaults) -> None:
        self.message_id = _new_id("msg_")
        self.events: EventLog[Any] = EventLog()
        self.faults = faults
        self.status: Optional[str] = None
        self.error: Optional[str] = None
        self.runner: Optional[asyncio.Task[None]] = None
        self.waits: list[ToolWait] = []
        #: writes the end of the turn (set by ``Chats.run`` from its writer)
        self.on_done: Callable[[str, Optional[str]], None] = self._v1_done

    @property
    def over(self) -> bool:
        """True once its ``done`` event was sent."""
        return self.status is not None

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        """Append one event (``message``, ``tool_call``); nothing once the turn is over."""
        if not self.events.closed:
            self.events.append(encode_event(self.events.last_id + 1, payload, event))

    def finish(self, status: str, error: Optional[str] = None) -> bool:
        """Write the end of the turn with ``status`` and close the log; False when the turn was already over."""
        if self.over:
            return False
        self.status, self.error = status, error
        self.on_done(status, error)
        self.events.close()
        return True

    def _v1_done(self, status: str, error: Optional[str]) -> None:
        payload: dict[str, Any] = {"message_id": self.message_id, "status": status}
        if error is not None:
            payload["error"] = error
        self.emit("done", payload)

    def halt(self) -> None:
        """Stop the assistant's coroutine (its waits included) without sending anything."""
        for wait in self.waits:
            wait.future.cancel()
        if self.runner is not None and not self.runner.done():
            self.runner.cancel()
        self.events.wake()


class Chat:
    """A conversation: the user's messages so far and its latest turn."""

    def __init__(self) -> None:
        self.id = _new_id("chat_")
        self.messages: list[str] = []
        self.turn: Optional[Turn] = None


class _Voice:
    """How the script of one turn talks: paced, numbered events in the turn's log."""

    def __init__(self, chats: Chats, turn: Turn) -> None:
        self._chats = chats
        self._turn = turn

    async def _message(self, kind: str, chunk: str, delay: float) -> None:
        await asyncio.sleep(delay / self._chats.speed)
        self._turn.emit("message", {"message_id": self._turn.message_id, "type": kind, "content": chunk})

    async def think(self, chunk: str) -> None:
        await self._message("thinking", chunk, THINK_DELAY)

    async def say(self, chunk: str) -> None:
        await self._message("text", chunk, WORD_DELAY)

    async def use_tool(self, name: str, args: dict[str, Any]) -> str:
        wait = self._chats.new_wait(self._turn)
        self._turn.emit("tool_call", {"id": wait.id, "name": name, "args": args})
        return await wait.future


class ChatWriter(Protocol):
    """A dialect's way to write a turn: its start, the script's voice, its end."""

    def started(self, chats: Chats, chat: Chat, turn: Turn, text: str) -> None:
        """A turn answering ``text`` was just created (before ``POST /agents/run`` answers)."""

    def voice(self, chats: Chats, chat: Chat, turn: Turn) -> Voice:
        """What the script of ``turn`` talks through."""

    def done(self, chat: Chat, turn: Turn, status: str, error: Optional[str]) -> None:
        """The turn ended (completed, failed or cancelled)."""


class V1ChatWriter:
    """PROTOCOL.md: ``message``/``tool_call`` events, then ``done``."""

    def started(self, chats: Chats, chat: Chat, turn: Turn, text: str) -> None:
        """Nothing is written before the assistant says something."""

    def voice(self, chats: Chats, chat: Chat, turn: Turn) -> Voice:
        return _Voice(chats, turn)

    def done(self, chat: Chat, turn: Turn, status: str, error: Optional[str]) -> None:
        turn._v1_done(status, error)


class Chats:
    """Every chat and pending tool call of one server.

    ``store`` is the server's task store (its ``faults`` are armed on every
    turn too, and its ``stopping`` flag ends streams and waits on shutdown);
    ``speed`` divides the assistant's delays; ``writer`` writes the turns on
    the wire (default ``V1ChatWriter``).
    """

    def __init__(self, store: Store, speed: float, writer: Optional[ChatWriter] = None) -> None:
        self.store = store
        self.speed = speed
        self.writer: ChatWriter = writer or V1ChatWriter()
        self.chats: dict[str, Chat] = {}
        self.waits: dict[str, ToolWait] = {}
        self._by_key: dict[str, dict[str, str]] = {}
        self._watcher: Optional[asyncio.Task[None]] = None

    def new_wait(self, turn: Turn) -> ToolWait:
        """Register a tool call of ``turn`` that waits for its result."""
        wait = ToolWait(turn)
        self.waits[wait.id] = wait
        turn.waits.append(wait)
        return wait

    def run(self, chat: Optional[Chat], text: str, faults: Sequence[FaultSpec], key: Optional[str]) -> dict[str, str]:
        """Start a turn answering ``text`` (in a new chat when ``chat`` is None).

        Returns the run answer ``{"chat_id", "message_id"}``; the same one for
        a repeated Idempotency-Key ``key``. 409 while ``chat`` has a turn going.
        """
        if key is not None and key in self._by_key:
            return self._by_key[key]
        if chat is None:
            chat = Chat()
            self.chats[chat.id] = chat
        elif chat.turn is not None and not chat.turn.over:
            raise HTTPException(409, f"chat {chat.id} is still answering; stop it first")
        earlier = list(chat.messages)
        chat.messages.append(text)
        turn = Turn(TaskFaults((*self.store.faults, *faults)))
        chat.turn = turn
        writer, current = self.writer, chat
        turn.on_done = lambda status, error: writer.done(current, turn, status, error)
        writer.started(self, chat, turn, text)
        voice = writer.voice(self, chat, turn)
        turn.runner = asyncio.get_running_loop().create_task(self._play(turn, voice, text, earlier))
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())
        answer = {"chat_id": chat.id, "message_id": turn.message_id}
        if key is not None:
            self._by_key[key] = answer
        return answer

    async def _play(self, turn: Turn, voice: Voice, text: str, earlier: list[str]) -> None:
        try:
            await assistant(voice, text, earlier)
        except AssistantFailed as exc:
            turn.finish("failed", str(exc))
        except Exception as exc:  # a bug in the script must still end the turn
            turn.finish("failed", f"internal error: {type(exc).__name__}")
        else:
            turn.finish("completed")

    def answer(self, call_id: str, result: str) -> None:
        """Hand ``result`` to the waiting tool call: 404 unknown, 409 answered or its turn over."""
        wait = self.waits.get(call_id)
        if wait is None:
            raise HTTPException(404, f"unknown tool call {call_id!r}")
        if wait.answered:
            raise HTTPException(409, f"tool call {call_id} was already answered")
        if wait.turn.over or wait.future.done():
            raise HTTPException(409, f"the turn of tool call {call_id} is over")
        wait.answered = True
        wait.future.set_result(result)

    def stop(self, chat: Chat) -> None:
        """End ``chat``'s turn with ``done`` ``cancelled``; nothing when no turn is going."""
        turn = chat.turn
        if turn is not None and turn.finish("cancelled"):
            turn.halt()

    async def _watch(self) -> None:
        while not self.store.stopping:
            await asyncio.sleep(_SHUTDOWN_POLL)
        for chat in self.chats.values():
            if chat.turn is not None:
                chat.turn.halt()


def chats_of(request: Request) -> Chats:
    """The server's chats."""
    return cast(Chats, request.app.state.chats)


def chat_of(request: Request) -> Chat:
    """The chat the path names; 404 when unknown."""
    chat = chats_of(request).chats.get(request.path_params["chat_id"])
    if chat is None:
        raise HTTPException(404, "unknown chat")
    return chat


async def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON object body; 400 when not JSON, 422 when not an object."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise HTTPException(400, "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(422, "the request body must be a JSON object")
    return body


def _known_agent(ref: str) -> bool:
    name, at, version = ref.partition("@")
    return name == AGENT and (not at or bool(version.strip()))


async def start_turn(request: Request) -> tuple[Chat, dict[str, str]]:
    """Check a ``POST /agents/run`` and start its turn; returns the chat and ``{"chat_id", "message_id"}``.

    Raises ``HTTPException`` for a bad body, an unknown agent or chat, or a chat still answering.
    """
    body = await json_object(request)
    ref, data, chat_id = body.get("agent"), body.get("input"), body.get("chat_id")
    if not isinstance(ref, str) or not ref:
        raise HTTPException(422, "'agent' must be a non-empty string")
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise HTTPException(422, "'input' must be an object with a string 'text'")
    if chat_id is not None and not isinstance(chat_id, str):
        raise HTTPException(422, "'chat_id' must be a string")
    try:
        specs = parse_faults(data.get("_faults"))
    except ValueError as exc:
        raise HTTPException(422, f"invalid '_faults': {exc}") from None
    misplaced = sorted({spec.kind for spec in specs} - TURN_FAULT_KINDS)
    if misplaced:
        raise HTTPException(422, f"invalid '_faults': {', '.join(misplaced)} do not apply to chats")
    if not _known_agent(ref):
        raise HTTPException(404, f"unknown agent {ref!r}; built-in agent: {AGENT}@latest")
    chats = chats_of(request)
    chat = None
    if chat_id is not None:
        chat = chats.chats.get(chat_id)
        if chat is None:
            raise HTTPException(404, f"unknown chat {chat_id!r}")
    answer = chats.run(chat, data["text"], specs, request.headers.get("idempotency-key") or None)
    return chats.chats[answer["chat_id"]], answer


async def run_agent(request: Request) -> Response:
    """``POST /agents/run``: start a turn of ``infsh/assistant`` (any version), in a new or given chat."""
    _, answer = await start_turn(request)
    return JSONResponse({"data": answer})


async def stream_chat(request: Request) -> Response:
    """``GET /chats/{id}/stream``: the latest turn's events as SSE, resumable."""
    chat = chat_of(request)
    turn = chat.turn
    assert turn is not None  # a chat exists only once its first turn started
    state = cast("ServerState", request.app.state.infsh)
    return stream_response(request, state, turn.events, turn.faults, malformed_event=b"message")


async def submit_tool_result(request: Request) -> Response:
    """``POST /tools/{id}``: ``{"result": str}`` for a waiting tool call."""
    body = await json_object(request)
    result = body.get("result")
    if not isinstance(result, str):
        raise HTTPException(422, "'result' must be a string (send other values JSON-encoded)")
    call_id = request.path_params["call_id"]
    chats_of(request).answer(call_id, result)
    return JSONResponse({"data": {"id": call_id, "status": "submitted"}})


async def stop_chat(request: Request) -> Response:
    """``POST /chats/{id}/stop``: end the turn going with ``done`` ``cancelled``."""
    chat = chat_of(request)
    chats_of(request).stop(chat)
    return JSONResponse({"data": {"chat_id": chat.id}})


ROUTES = [
    Route("/agents/run", run_agent, methods=["POST"]),
    Route("/chats/{chat_id}/stream", stream_chat, methods=["GET"]),
    Route("/chats/{chat_id}/stop", stop_chat, methods=["POST"]),
    Route("/tools/{call_id}", submit_tool_result, methods=["POST"]),
]
