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
from urllib.parse import quote

import attrs

from ._answers import envelope
from ._dialects import HOSTED_CHAT_EVENTS, sse_objects
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
_CHAT_EVENTS = frozenset({"delta", "chat_messages", "chats", "agent_runs"})
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
        except (ValueError, RecursionError):
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
        self.user_seen = False
        self.idle_run: Optional[tuple[Any, Any]] = None  # an inactive run seen before this turn was known to end
        self.ended = False
        self.count = 0
        self.last_news = time.monotonic()

    # -- frames -----------------------------------------------------------

    def from_sse(self, events: Iterator[ServerSentEvent]) -> Iterator[AgentEvent]:
        return self.from_ndjson(sse_objects(events, HOSTED_CHAT_EVENTS))

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
            event = obj.get("event")
            data = obj.get("data", obj)
            if event not in _CHAT_EVENTS or not isinstance(data, dict) or self.ended:
                continue  # heartbeats, keep-alives and event types a chat turn does not use
            self.last_news = time.monotonic()
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
            messages = self._all_messages()
        self.delta_seen = set()
        self.last_news = time.monotonic()
        listed = [message for message in messages if isinstance(message, dict)]
        ids = [message.get("id") for message in listed]
        if self.user_id in ids:  # oldest first: what follows this turn's user message is this turn's
            after = ids.index(self.user_id)
            for number, message_id in enumerate(ids):
                if isinstance(message_id, str) and message_id != self.user_id and message_id not in self.theirs:
                    (self.ours if number > after else self.theirs).add(message_id)
        items: list[AgentEvent] = []
        for message in listed:
            items.extend(self._message(message))
        items.extend(self._run(chat.get("active_run"), chat.get("status")))
        return [self._numbered(item) for item in items]

    def stale(self) -> bool:
        return time.monotonic() - self.last_news > self.reconcile_interval

    def _get(self, path: str) -> Any:
        return envelope(self.transport.send("GET", path, scope=self.scope))[0]

    def _all_messages(self) -> list[Any]:
        """``GET /chats/{id}/messages``, every page (``next_cursor`` sent back as ``?cursor=``), at most 100."""
        messages: list[Any] = []
        path = f"{self.chat_path}/messages"
        for _ in range(100):
            page = self._get(path)
            if isinstance(page, list):
                return messages + page
            if not isinstance(page, dict):
                break
            items = page.get("items")
            messages.extend(items if isinstance(items, list) else [])
            cursor = page.get("next_cursor")
            if not page.get("has_next") or not isinstance(cursor, str) or not cursor:
                break
            path = f"{self.chat_path}/messages?cursor={quote(cursor, safe='')}"
        return messages

    # -- what is new --------------------------------------------------------

    def _is_ours(self, message: dict[str, Any]) -> bool:
        message_id = message.get("id")
        if not isinstance(message_id, str) or message_id in self.theirs:
            return False
        if message_id in self.ours:
            return True
        mine = False
        if message_id == self.user_id:
            self.user_seen = True
        elif message.get("role") == "assistant":
            order, created = message.get("order"), message.get("created_at")
            if isinstance(order, int) and isinstance(self.user_order, int):
                mine = order > self.user_order
            elif isinstance(created, str) and isinstance(self.user_created, str):
                mine = created >= self.user_created
            elif self.user_seen:  # messages come oldest first: after this turn's user message, this turn's
                mine = True
            else:  # a message still being written, or one that appeared after this turn's run started
                mine = message.get("status") not in _FINAL_MESSAGE or self.active_seen
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
        ending = self.idle_run if final and message_id == self.message_id else None
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
        if ending is not None:  # the run was seen over before this turn's message was: the turn is over
            items.extend(self._run(*ending))
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
            self.idle_run = None
            return []
        # An idle snapshot left from the previous turn does not end this one (kept: it may be this
        # turn's, over before the stream opened, which this turn's final message will tell).
        if not (self.active_seen or self.message_id in self.final_messages):
            self.idle_run = (run, chat_status)
            return []
        self.ended = True
        error = run.get("error") if isinstance(run, dict) else None
        status = _DONE_STATUS.get(state, "failed")
        return [Done(status, self.message_id, error if isinstance(error, str) and error else None)]
