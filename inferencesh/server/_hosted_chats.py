"""Agent chats in the hosted dialect (HOSTED.md "Agent chats"): the writer, the voice, the routes.

The chats, turns, tool waits and the scripted assistant are ``_agents``'
(shared with v1); this module keeps what the hosted wire shows of them — a
Chat, its ChatMessages, the active run — and writes each step of a turn into
the turn's log as typed events (``chats``, ``chat_messages``,
``agent_runs``, ``delta``).

A turn on the wire: the user message and the pending assistant message
(``chat_messages``), the run ``working`` (``agent_runs``, ``chats``); per
chunk of thinking or text a ``delta`` keyed by the assistant message id and
the grown ``chat_messages`` snapshot; a client tool call as a
``tool_invocations`` entry ``awaiting_input`` (the chat ``awaiting_input``,
the run still ``working``, as the official Python client needs), then
``completed`` with its result; at the end the final message snapshot, the
run, and the final ``chats`` event (run ``completed``/``failed``/
``canceled``, chat ``idle``). A stream opens with the latest turn's two
message snapshots, then a ``chats`` event, then what the turn does next.

Choices where HOSTED.md is silent: ``chats`` events carry no
``chat_messages`` (``GET /chats/{id}`` does); ``POST /tools/{id}`` answers
``{"id", "status": "submitted"}`` and ``POST /chats/{id}/stop`` the chat,
both in the envelope the request asked for (legacy for the official
client, which needs ``"success": true``); the messages list is one page,
oldest first (``next_cursor`` null, ``has_next`` false).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any, Optional, cast

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._agents import THINK_DELAY, WORD_DELAY, Chat, Chats, Turn, chat_of, chats_of, json_object, start_turn
from ._assistant import Voice
from ._hosted_wire import HostedItem, envelope, hosted_stream, typed_item
from ._store import now, rfc3339

_MESSAGE_STATUS = {"completed": "ready", "failed": "failed", "cancelled": "cancelled"}
_RUN_STATE = {"completed": "completed", "failed": "failed", "cancelled": "canceled"}


def _stamp() -> str:
    return rfc3339(now())


@dataclass
class HostedChat:
    """What the hosted wire shows of one chat."""

    id: str
    created_at: str = field(default_factory=_stamp)
    status: str = "idle"
    run: Optional[dict[str, Any]] = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    #: assistant message id → (user message, assistant message) of its turn
    turns: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    latest: Optional[str] = None

    def dto(self, messages: bool = False) -> dict[str, Any]:
        """The Chat; with its ``chat_messages`` when ``messages``."""
        chat: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "active_run": dict(self.run) if self.run is not None else None,
            "created_at": self.created_at,
            "updated_at": _stamp(),
        }
        if messages:
            chat["chat_messages"] = [_copy(message) for message in self.messages]
        return chat

    def message(self, role: str, status: str, content: list[dict[str, Any]], message_id: str) -> dict[str, Any]:
        """Add a ChatMessage to the chat and return it."""
        moment = _stamp()
        message = {
            "id": message_id,
            "chat_id": self.id,
            "order": len(self.messages),
            "role": role,
            "status": status,
            "content": content,
            "tool_invocations": [],
            "agent_run_id": self.run["id"] if self.run else None,
            "created_at": moment,
            "updated_at": moment,
        }
        self.messages.append(message)
        return message


def _copy(message: dict[str, Any]) -> dict[str, Any]:
    """A snapshot of a message that later changes will not touch."""
    copy = dict(message)
    copy["content"] = [dict(part) for part in message["content"]]
    copy["tool_invocations"] = [dict(invocation) for invocation in message["tool_invocations"]]
    return copy


class HostedChatWriter:
    """Writes turns as the hosted service does; holds the hosted view of every chat."""

    def __init__(self) -> None:
        self.book: dict[str, HostedChat] = {}

    def started(self, chats: Chats, chat: Chat, turn: Turn, text: str) -> None:
        hosted = self.book.setdefault(chat.id, HostedChat(chat.id))
        moment = _stamp()
        hosted.run = {"id": "run_" + secrets.token_hex(12), "chat_id": chat.id, "state": "working", "error": None}
        hosted.run.update(created_at=moment, updated_at=moment)
        user = hosted.message("user", "ready", [{"type": "text", "text": text}], "msg_" + secrets.token_hex(12))
        hosted.run["user_message_id"] = user["id"]
        assistant = hosted.message("assistant", "pending", [], turn.message_id)
        hosted.turns[turn.message_id] = (user, assistant)
        hosted.latest = turn.message_id
        hosted.status = "busy"
        emit(turn, "chat_messages", _copy(user))
        emit(turn, "chat_messages", _copy(assistant))
        emit(turn, "agent_runs", dict(hosted.run))
        emit(turn, "chats", hosted.dto())

    def voice(self, chats: Chats, chat: Chat, turn: Turn) -> Voice:
        return HostedVoice(chats, self.book[chat.id], turn)

    def done(self, chat: Chat, turn: Turn, status: str, error: Optional[str]) -> None:
        hosted = self.book[chat.id]
        _, assistant = hosted.turns[turn.message_id]
        assistant["status"] = _MESSAGE_STATUS[status]
        assistant["updated_at"] = _stamp()
        for invocation in assistant["tool_invocations"]:
            if invocation["status"] == "awaiting_input":
                invocation["status"] = "cancelled"
        if hosted.run is not None:
            hosted.run.update(state=_RUN_STATE[status], error=error, updated_at=_stamp())
        hosted.status = "idle"
        emit(turn, "chat_messages", _copy(assistant))
        if hosted.run is not None:
            emit(turn, "agent_runs", dict(hosted.run))
        emit(turn, "chats", hosted.dto())

    def opening(self, chat: Chat) -> list[HostedItem]:
        """What a chat stream starts with: the latest turn's message snapshots, then the chat."""
        hosted = self.book[chat.id]
        items = []
        if hosted.latest is not None:
            items = [typed_item("chat_messages", _copy(message)) for message in hosted.turns[hosted.latest]]
        return [*items, typed_item("chats", hosted.dto())]


def emit(turn: Turn, event: str, data: Any) -> None:
    """Append one typed event to ``turn``'s log; nothing once the turn is over."""
    if not turn.events.closed:
        turn.events.append(typed_item(event, data))


class HostedVoice:
    """How the script talks in the hosted dialect: deltas plus growing message snapshots."""

    def __init__(self, chats: Chats, hosted: HostedChat, turn: Turn) -> None:
        self._chats = chats
        self._hosted = hosted
        self._turn = turn
        self._message = hosted.turns[turn.message_id][1]
        self._seq = 0

    async def _chunk(self, kind: str, chunk: str, delay: float) -> None:
        await asyncio.sleep(delay / self._chats.speed)
        if self._turn.over:
            return
        self._seq += 1
        key = "reasoning" if kind == "reasoning" else "response"
        delta = {"delta": {key: chunk}, "seq": self._seq, "resource_id": self._message["id"]}
        emit(self._turn, "delta", delta)
        content: list[dict[str, Any]] = self._message["content"]
        part = next((part for part in content if part["type"] == kind), None)
        if part is None:
            part = {"type": kind, "text": ""}
            content.append(part)
            content.sort(key=lambda p: p["type"] != "reasoning")  # reasoning first, then text
        part["text"] += chunk
        self._message["updated_at"] = _stamp()
        emit(self._turn, "chat_messages", _copy(self._message))

    async def think(self, chunk: str) -> None:
        await self._chunk("reasoning", chunk, THINK_DELAY)

    async def say(self, chunk: str) -> None:
        await self._chunk("text", chunk, WORD_DELAY)

    async def use_tool(self, name: str, args: dict[str, Any]) -> str:
        wait = self._chats.new_wait(self._turn)
        moment = _stamp()
        invocation: dict[str, Any] = {
            "id": wait.id,
            "tool_invocation_id": "toolu_" + secrets.token_hex(8),
            "chat_message_id": self._message["id"],
            "type": "client",
            "status": "awaiting_input",
            "function": {"name": name, "arguments": dict(args)},
            "result": None,
            "created_at": moment,
            "updated_at": moment,
        }
        self._message["tool_invocations"].append(invocation)
        self._hosted.status = "awaiting_input"
        emit(self._turn, "chat_messages", _copy(self._message))
        emit(self._turn, "chats", self._hosted.dto())
        result = await wait.future
        invocation.update(status="completed", result=result, updated_at=_stamp())
        self._hosted.status = "busy"
        emit(self._turn, "chat_messages", _copy(self._message))
        emit(self._turn, "chats", self._hosted.dto())
        return result


def _book(request: Request) -> dict[str, HostedChat]:
    return cast(HostedChatWriter, chats_of(request).writer).book


async def run_agent(request: Request) -> Response:
    """``POST /agents/run``: ``{"user_message", "assistant_message"}``; the run is already working."""
    chat, answer = await start_turn(request)
    user, assistant = _book(request)[chat.id].turns[answer["message_id"]]
    return envelope(request, {"user_message": _copy(user), "assistant_message": _copy(assistant)})


async def get_chat(request: Request) -> Response:
    """``GET /chats/{id}``: the Chat with its messages."""
    return envelope(request, _book(request)[chat_of(request).id].dto(messages=True))


async def list_messages(request: Request) -> Response:
    """``GET /chats/{id}/messages``: every message, oldest first, as one page."""
    hosted = _book(request)[chat_of(request).id]
    items = [_copy(message) for message in hosted.messages]
    return envelope(request, {"items": items, "next_cursor": None, "has_next": False})


async def stream_chat(request: Request) -> Response:
    """``GET /chats/{id}/stream``: the chat's current state, then the latest turn's typed events."""
    chat = chat_of(request)
    turn = chat.turn
    assert turn is not None  # a chat exists only once its first turn started
    writer = cast(HostedChatWriter, chats_of(request).writer)
    return hosted_stream(request, turn.events, turn.faults, writer.opening(chat))


async def submit_tool_result(request: Request) -> Response:
    """``POST /tools/{invocation id}``: ``{"result": str}`` for a client tool awaiting input."""
    body = await json_object(request)
    result = body.get("result")
    if not isinstance(result, str):
        raise HTTPException(422, "'result' must be a string (send other values JSON-encoded)")
    call_id = request.path_params["call_id"]
    chats_of(request).answer(call_id, result)
    return envelope(request, {"id": call_id, "status": "submitted"})


async def stop_chat(request: Request) -> Response:
    """``POST /chats/{id}/stop``: end the turn going (run ``canceled``); the chat."""
    chat = chat_of(request)
    chats_of(request).stop(chat)
    return envelope(request, _book(request)[chat.id].dto())


ROUTES = [
    Route("/agents/run", run_agent, methods=["POST"]),
    Route("/chats/{chat_id}", get_chat, methods=["GET"]),
    Route("/chats/{chat_id}/messages", list_messages, methods=["GET"]),
    Route("/chats/{chat_id}/stream", stream_chat, methods=["GET"]),
    Route("/chats/{chat_id}/stop", stop_chat, methods=["POST"]),
    Route("/tools/{call_id}", submit_tool_result, methods=["POST"]),
]
