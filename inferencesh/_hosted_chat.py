"""The hosted service's chats API (HOSTED.md "Agent chats"), turned into ``Message``, ``ToolCall`` and ``Done``.

A hosted chat stream carries typed events: ``delta`` (text and reasoning as
they are generated, keyed by ``resource_id``, the message id),
``chat_messages`` (whole message snapshots, repeated as a message grows,
with its client tool invocations), ``chats`` and ``agent_runs`` (the run's
state). A ``HostedChatReader`` keeps, for one turn:

* how much text and thinking of each of the turn's assistant messages was
  handed out, so deltas and snapshots advance one cursor and nothing is
  repeated (a snapshot's text counts only where no delta came on the current
  connection, or once the message is final);
* the tool invocations dispatched (each ``client`` invocation
  ``awaiting_input`` once; ``ToolCall.id`` is the invocation id to answer at
  ``POST /tools/{id}``);
* whether this turn's run was seen active, so an idle ``chats`` snapshot left
  from the previous turn does not end the new one.

The turn ends (``Done``) when the run's ``state`` is none of submitted,
working, input_required (without a run: when the chat's ``status`` is
neither busy nor awaiting_input). After a drop, ``recover()`` reads the chat
(``GET /chats/{id}``, and ``GET /chats/{id}/messages`` when the chat does not
list them) and hands out what was missed. ``event_id`` counts the events
handed out (1, 2, 3, ...), as on hosted task streams.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from typing import Any, Callable, Optional, Union

import attrs

from ._answers import envelope
from ._dialects import sse_object
from ._errors import ProtocolError
from ._sse import ServerSentEvent
from ._transport import Transport
from ._watchdog import _Abort
from .models import Done, Message, ToolCall

__all__ = ["HostedChatReader", "turn_ids"]

AgentEvent = Union[Message, ToolCall, Done]

_ACTIVE_RUN = frozenset({"submitted", "working", "input_required"})
_ACTIVE_CHAT = frozenset({"busy", "awaiting_input"})
_FINAL_MESSAGE = frozenset({"ready", "failed", "cancelled", "canceled"})
_DONE_STATUS = {"completed": "completed", "canceled": "cancelled", "cancelled": "cancelled"}


def turn_ids(data: Any) -> Optional[tuple[str, str, dict[str, Any]]]:
    """(chat id, assistant message id, user message) from a hosted ``POST /agents/run`` answer, else None."""
    if not isinstance(data, dict):
        return None
    assistant = data.get("assistant_message")
    if not isinstance(assistant, dict) or not isinstance(assistant.get("chat_id"), str):
        return None
    user = data.get("user_message")
    message_id = assistant.get("id")
    return assistant["chat_id"], message_id if isinstance(message_id, str) else "", user if isinstance(
        user, dict
    ) else {}


def _texts(message: dict[str, Any]) -> dict[str, str]:
    """A message snapshot's text and thinking: ``{"text": ..., "thinking": ...}``."""
    text: list[str] = []
    thinking: list[str] = []
    content = message.get("content")
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                kind = part.get("type")
                if kind == "text":
                    text.append(part["text"])
                elif kind == "reasoning":
                    thinking.append(part["text"])
    elif isinstance(content, str):
        text.append(content)
    return {"thinking": "".join(thinking), "text": "".join(text)}


def _arguments(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else {}
        except ValueError:
            return value
    return {} if value is None else value


class HostedChatReader:
    """One turn on a hosted chat stream (see the module docstring).

    ``message_id`` is the turn's assistant message id and ``user`` its user
    message, both from the ``POST /agents/run`` answer; ``reconcile_interval``
    is in seconds; ``heard()`` is told of every object a connection brings.
    """

    uses_ids = False

    def __init__(
        self,
        transport: Transport,
        chat_path: str,
        scope: _Abort,
        *,
        message_id: str,
        user: dict[str, Any],
        reconcile_interval: float,
        heard: Callable[[], None],
    ) -> None:
        self.transport = transport
        self.chat_path = chat_path
        self.scope = scope
        self.message_id = message_id
        self.user_id = user.get("id")
        self.user_order = user.get("order")
        self.user_created = user.get("created_at")
        self.reconcile_interval = reconcile_interval
        self.heard = heard
        self.ours: set[str] = {message_id} if message_id else set()
        self.theirs: set[str] = set()
        self.sent: dict[tuple[str, str], int] = {}
        self.delta_seen: set[str] = set()  # messages that had a delta on the current connection
        self.dispatched: set[str] = set()
        self.final_messages: set[str] = set()
        self.active_seen = False
        self.ended = False
        self.count = 0
        self.last_news = time.monotonic()

    # -- frames -----------------------------------------------------------

    def from_sse(self, events: Iterator[ServerSentEvent]) -> Iterator[AgentEvent]:
        return self.from_ndjson([sse_object(event)] for event in events)

    def from_ndjson(self, batches: Iterator[list[dict[str, Any]]]) -> Iterator[AgentEvent]:
        for item in self._events(obj for batch in batches for obj in batch):
            yield self._numbered(item)

    def _numbered(self, item: AgentEvent) -> AgentEvent:
        self.count += 1
        return attrs.evolve(item, event_id=self.count)

    def _events(self, objects: Iterable[dict[str, Any]]) -> Iterator[AgentEvent]:
        self.delta_seen = set()
        self.last_news = time.monotonic()
        for obj in objects:
            self.heard()
            if obj.get("type") == "heartbeat":
                continue
            self.last_news = time.monotonic()
            event = obj.get("event")
            data = obj.get("data", obj)
            if not isinstance(data, dict) or self.ended:
                continue
            if event == "delta":
                yield from self._delta(data)
            elif event == "chat_messages":
                yield from self._message(data)
            elif event == "chats":
                yield from self._run(data.get("active_run"), data.get("status"))
            elif event == "agent_runs":
                yield from self._run(data, None)

    def recover(self) -> list[AgentEvent]:
        """After a drop: read the chat and its messages, and hand out what was missed."""
        chat = self._get(self.chat_path)
        if not isinstance(chat, dict):
            raise ProtocolError(f"GET {self.chat_path} answered no chat object")
        messages = chat.get("chat_messages")
        if not isinstance(messages, list):
            page = self._get(f"{self.chat_path}/messages")
            messages = page.get("items") if isinstance(page, dict) else page
        self.delta_seen = set()
        self.last_news = time.monotonic()
        items: list[AgentEvent] = []
        for message in messages if isinstance(messages, list) else []:
            if isinstance(message, dict):
                items.extend(self._message(message))
        items.extend(self._run(chat.get("active_run"), chat.get("status")))
        return [self._numbered(item) for item in items]

    def stale(self) -> bool:
        return time.monotonic() - self.last_news > self.reconcile_interval

    def _get(self, path: str) -> Any:
        return envelope(self.transport.send("GET", path, scope=self.scope))[0]

    # -- what is new --------------------------------------------------------

    def _is_ours(self, message: dict[str, Any]) -> bool:
        message_id = message.get("id")
        if not isinstance(message_id, str) or message_id in self.theirs:
            return False
        if message_id in self.ours:
            return True
        mine = False
        if message.get("role") == "assistant" and message_id != self.user_id:
            order, created = message.get("order"), message.get("created_at")
            if isinstance(order, int) and isinstance(self.user_order, int):
                mine = order > self.user_order
            elif isinstance(created, str) and isinstance(self.user_created, str):
                mine = created >= self.user_created
            else:
                mine = message.get("status") not in _FINAL_MESSAGE
        (self.ours if mine else self.theirs).add(message_id)
        return mine

    def _advance(self, message_id: str, kind: str, text: str, whole: bool) -> list[AgentEvent]:
        """Hand out ``text`` (a chunk, or with ``whole`` the message's whole text so far) once."""
        key = (message_id, kind)
        sent = self.sent.get(key, 0)
        if whole:
            text = text[sent:]
        if not text:
            return []
        self.sent[key] = sent + len(text)
        return [Message(kind, text, message_id)]

    def _delta(self, data: dict[str, Any]) -> list[AgentEvent]:
        message_id = data.get("resource_id")
        delta = data.get("delta")
        if not isinstance(message_id, str) or not isinstance(delta, dict) or message_id in self.theirs:
            return []
        self.ours.add(message_id)
        self.delta_seen.add(message_id)
        items: list[AgentEvent] = []
        for key, kind in (("reasoning", "thinking"), ("response", "text")):
            chunk = delta.get(key)
            if isinstance(chunk, str):
                items.extend(self._advance(message_id, kind, chunk, False))
        return items

    def _message(self, message: dict[str, Any]) -> list[AgentEvent]:
        if not self._is_ours(message):
            return []
        message_id: str = message["id"]
        final = message.get("status") in _FINAL_MESSAGE
        if final:
            self.final_messages.add(message_id)
        items: list[AgentEvent] = []
        if final or message_id not in self.delta_seen:
            for kind, text in _texts(message).items():
                items.extend(self._advance(message_id, kind, text, True))
        invocations = message.get("tool_invocations")
        for invocation in invocations if isinstance(invocations, list) else []:
            if not isinstance(invocation, dict):
                continue
            call_id = invocation.get("id")
            if (
                isinstance(call_id, str)
                and call_id not in self.dispatched
                and invocation.get("type") == "client"
                and invocation.get("status") == "awaiting_input"
            ):
                self.dispatched.add(call_id)
                function = invocation.get("function")
                function = function if isinstance(function, dict) else {}
                name = function.get("name")
                items.append(
                    ToolCall(call_id, name if isinstance(name, str) else "", _arguments(function.get("arguments")))
                )
        return items

    def _run(self, run: Any, chat_status: Any) -> list[AgentEvent]:
        if isinstance(run, dict) and isinstance(run.get("state"), str):
            state: str = run["state"]
            active = state in _ACTIVE_RUN
        elif isinstance(chat_status, str):
            state, active = ("completed", False) if chat_status not in _ACTIVE_CHAT else (chat_status, True)
        else:
            return []
        if active:
            self.active_seen = True
            return []
        # An idle snapshot left from the previous turn does not end this one.
        if not (self.active_seen or self.message_id in self.final_messages):
            return []
        self.ended = True
        error = run.get("error") if isinstance(run, dict) else None
        status = _DONE_STATUS.get(state, "failed")
        return [Done(status, self.message_id, error if isinstance(error, str) and error else None)]
