"""Agents: streamed text and thinking, and tool calls answered by the caller's code.

Wire: PROTOCOL.md "Agent chat", or the hosted chats API (HOSTED.md, read by
``_hosted_chat``), told apart by the answer of ``POST /agents/run``. A turn
is followed on ``GET /chats/{chat_id}/stream`` with the same resume, timeout
and cancel as task streams (``_resume``). PROTOCOL.md events: ``message`` →
``Message``, ``tool_call`` → ``ToolCall``, ``done`` → ``Done``; other event
types are ignored.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from ._dialects import V1Reader, accept_for
from ._errors import AgentError, ConflictError, ProtocolError, UsageError
from ._hosted_chat import HostedChatReader, turn_ids
from ._iterator import FeedIterator, once
from ._resume import Feed, follow
from ._sse import ServerSentEvent
from ._transport import quote_id
from ._watchdog import CancelToken, _Abort
from .models import Done, Message, Reply, ToolCall

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Agent", "AgentEvent", "AgentStream"]

log = logging.getLogger("inferencesh")

AgentEvent = Union[Message, ToolCall, Done]
_DONE_STATUSES = frozenset({"completed", "failed", "cancelled"})
_EVENT_TYPES = frozenset({"message", "tool_call", "done"})


def _object(event: ServerSentEvent) -> dict[str, Any]:
    try:
        data = json.loads(event.data)
    except (ValueError, RecursionError):
        raise ProtocolError(f"{event.event} event data is not JSON", event_id=event.id) from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{event.event} event data is not a JSON object", event_id=event.id)
    return data


def _text(data: dict[str, Any], key: str, event: ServerSentEvent, default: Optional[str] = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ProtocolError(f"{event.event} event has no string {key!r}", event_id=event.id)
    return value


def parse_agent_event(event: ServerSentEvent, number: int) -> Optional[AgentEvent]:
    """A chat stream event → ``Message`` / ``ToolCall`` / ``Done``; unknown types → None.

    Raises ``ProtocolError`` when the data does not have the PROTOCOL.md shape.
    """
    if event.event == "message":
        data = _object(event)
        kind = _text(data, "type", event)
        if kind not in ("text", "thinking"):
            raise ProtocolError(f"message type {kind!r} is neither 'text' nor 'thinking'", event_id=event.id)
        return Message(kind, _text(data, "content", event), _text(data, "message_id", event, ""), number)
    if event.event == "tool_call":
        data = _object(event)
        args = data.get("args", {})
        if not isinstance(args, dict):
            raise ProtocolError("tool_call args is not a JSON object", event_id=event.id)
        return ToolCall(_text(data, "id", event), _text(data, "name", event), args, number)
    if event.event == "done":
        data = _object(event)
        status = _text(data, "status", event)
        if status not in _DONE_STATUSES:
            raise ProtocolError(f"done status {status!r} is not completed, failed or cancelled", event_id=event.id)
        error = data.get("error")
        return Done(status, _text(data, "message_id", event, ""), error if isinstance(error, str) else None, number)
    return None


class AgentStream(FeedIterator[AgentEvent]):
    """One agent turn as an iterator of ``Message``, ``ToolCall`` and, last, ``Done``.

    Answer each ``ToolCall`` with ``agent.submit_tool_result(call.id, result)``
    (the turn waits for it). ``reply`` is the turn's ``Reply`` once ``Done``
    arrived. Like ``TaskStream``: a context manager, iterated once, and
    ``close()`` (thread-safe), leaving ``with`` or garbage collection release
    the connection at once. Raises ``StreamTimeout``, ``Cancelled``,
    ``ConnectionLost``, ``ProtocolError`` or ``APIError`` from the loop.
    """

    def __init__(
        self,
        chat_id: str,
        message_id: str,
        feed: Feed[AgentEvent],
        gen: Generator[AgentEvent, None, None],
        on_abort: Optional[Callable[[], None]] = None,
    ):
        super().__init__(feed, gen, on_abort)
        self.chat_id = chat_id
        self.message_id = message_id
        self._text: list[str] = []
        self._thinking: list[str] = []
        self._tool_calls: list[ToolCall] = []
        self._done: Optional[Done] = None

    def _seen(self, item: AgentEvent) -> None:
        if isinstance(item, Message):
            (self._text if item.type == "text" else self._thinking).append(item.content)
        elif isinstance(item, ToolCall):
            self._tool_calls.append(item)
        else:
            self._done = item

    @property
    def text(self) -> str:
        """The answer text received so far (thinking excluded)."""
        return "".join(self._text)

    @property
    def thinking(self) -> str:
        """The thinking text received so far."""
        return "".join(self._thinking)

    @property
    def reply(self) -> Optional[Reply]:
        """The turn's ``Reply`` once its ``Done`` arrived, else None."""
        done = self._done
        if done is None:
            return None
        return Reply(
            self.chat_id,
            done.message_id or self.message_id,
            self.text,
            self.thinking,
            done.status,
            tuple(self._tool_calls),
            done.error,
        )


class Agent:
    """A conversation with one agent (``client.agent("org/name@version")``), reusable for many turns.

    ``chat_id`` is None until the first turn starts, then names the chat that
    later turns continue. Thread-safe for ``submit_tool_result`` and ``stop``
    from other threads while a turn streams.
    """

    def __init__(self, client: Client, ref: str, chat_id: Optional[str] = None) -> None:
        if not isinstance(ref, str) or not ref.strip():
            raise UsageError("agent reference must be a non-empty string such as 'my-org/assistant@latest'")
        self._client = client
        self.ref = ref
        self.chat_id = chat_id
        self._submitted: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<inferencesh.Agent {self.ref!r} chat_id={self.chat_id!r}>"

    def stream(
        self,
        text: str,
        *,
        timeout: Optional[float] = None,
        cancel: Optional[CancelToken] = None,
        stop_on_abort: bool = False,
    ) -> AgentStream:
        """Start a turn with the user's ``text``; returns its ``AgentStream``.

        ``timeout`` (seconds, one total deadline) and ``cancel`` work as for
        ``Client.run``; ``stop_on_abort`` also stops the turn on the server
        after a timeout, a cancel or Ctrl-C. Raises ``UsageError`` for a
        non-string text, ``NotFoundError`` for an unknown agent or chat.
        """
        if not isinstance(text, str):
            raise UsageError(f"message text must be a string, not {type(text).__name__}")
        client = self._client
        scope = _Abort(timeout, cancel)
        try:
            body: dict[str, Any] = {"agent": self.ref, "input": {"text": text}}
            if self.chat_id is not None:
                body["chat_id"] = self.chat_id
            # the retries of a run whose answer was lost must not start a second turn
            headers = {"Idempotency-Key": uuid.uuid4().hex}
            data = client._transport.call("POST", "/agents/run", scope=scope, body=body, headers=headers)
            dialect = client.settings.dialect
            hosted = turn_ids(data) if dialect != "v1" else None
            if hosted is None and (not isinstance(data, dict) or not isinstance(data.get("chat_id"), str)):
                raise ProtocolError("POST /agents/run answered without a chat id")
        except BaseException:
            scope.close()
            raise
        if hosted is not None:
            chat_id, message_id, user = hosted
        else:
            chat_id, message_id, user = data["chat_id"], data.get("message_id"), {}
        self.chat_id = chat_id
        scope.task_id = chat_id
        settings = client.settings
        chat_path = f"/chats/{quote_id(chat_id, 'chat_id')}"
        feed: Feed[AgentEvent] = Feed(
            client._transport,
            f"{chat_path}/stream",
            scope,
            is_terminal=lambda event: isinstance(event, Done),
            last_event_id=None,
            max_reconnects=settings.max_reconnects,
            idle_timeout=settings.idle_timeout,
            max_event_bytes=settings.max_event_bytes,
            accept=accept_for(settings.stream_format, "hosted" if hosted is not None else "v1"),
        )
        if hosted is not None:
            feed.reader = HostedChatReader(
                client._transport,
                chat_path,
                scope,
                message_id=message_id,
                user=user,
                reconcile_interval=settings.reconcile_interval,
                heard=feed.hear,
            )
        else:
            feed.reader = V1Reader(parse_agent_event, _EVENT_TYPES, lambda: feed.last_event_id, feed.hear)
        on_abort = once(self._stop_quietly) if stop_on_abort else None
        return AgentStream(
            chat_id, message_id if isinstance(message_id, str) else "", feed, follow(feed, on_abort), on_abort
        )

    def send_message(
        self,
        text: str,
        *,
        on_message: Optional[Callable[[Message], Any]] = None,
        on_tool_call: Optional[Callable[[ToolCall], Any]] = None,
        timeout: Optional[float] = None,
        cancel: Optional[CancelToken] = None,
        stop_on_abort: bool = False,
    ) -> Reply:
        """Send ``text`` and block for the whole turn; returns its ``Reply``.

        ``on_message(msg)`` gets each chunk (``msg.type`` "text" or
        "thinking", ``msg.content``). ``on_tool_call(call)`` gets each tool
        call: answer it with ``submit_tool_result(call.id, result)`` or return
        the result (not None) and it is submitted for you. An exception in a
        callback stops the turn on the server and reaches the caller
        unchanged. A turn that ends ``failed`` raises ``AgentError``; after
        ``stop()`` the reply has status ``"cancelled"``. A tool call with no
        ``on_tool_call`` raises ``UsageError`` (after stopping the turn), since
        the turn would otherwise wait forever. ``timeout``, ``cancel`` and
        ``stop_on_abort`` work as for ``stream()``: ``StreamTimeout`` or
        ``Cancelled`` leave the turn going on the server unless
        ``stop_on_abort``.
        """
        with self.stream(text, timeout=timeout, cancel=cancel, stop_on_abort=stop_on_abort) as turn:
            for event in turn:
                try:
                    if isinstance(event, Message):
                        if on_message is not None:
                            on_message(event)
                    elif isinstance(event, ToolCall):
                        self._answer(event, on_tool_call)
                except Exception:  # the caller's code failed: the turn must not wait for it
                    self._stop_quietly()
                    raise
        reply = turn.reply
        if reply is None:  # closed from another thread before the turn ended
            raise AgentError(turn.chat_id, "the turn's stream was closed before it ended")
        if reply.status == "failed":
            raise AgentError(reply.chat_id, reply.error)
        return reply

    def _answer(self, call: ToolCall, on_tool_call: Optional[Callable[[ToolCall], Any]]) -> None:
        if on_tool_call is None:
            raise UsageError(f"the agent called tool {call.name!r} but send_message got no on_tool_call")
        result = on_tool_call(call)
        with self._lock:
            answered = call.id in self._submitted
        if result is not None and not answered:
            self.submit_tool_result(call.id, result)

    def submit_tool_result(self, call_id: str, result: Any) -> None:
        """Answer tool call ``call_id`` (``POST /tools/{id}``); a non-string result is sent JSON-encoded.

        Raises ``NotFoundError`` for an unknown call, ``ConflictError`` when
        it was answered already, ``UsageError`` when the result is not
        JSON-serialisable.
        """
        if not isinstance(result, str):
            try:
                result = json.dumps(result)
            except (TypeError, ValueError) as exc:
                raise UsageError(f"tool result is not JSON-serialisable: {exc}") from None
        # Repeating it is harmless: a 409 on a retry means the attempt whose answer was lost did it.
        self._client._transport.call_within(
            30.0,
            "POST",
            f"/tools/{quote_id(call_id, 'call_id')}",
            body={"result": result},
            retried_conflict=lambda: {"id": call_id, "status": "submitted"},
        )
        with self._lock:
            self._submitted.add(call_id)

    def stop(self) -> None:
        """Stop the current generation (``POST /chats/{id}/stop``); the turn ends with status "cancelled".

        Does nothing before the first turn.
        """
        if self.chat_id is not None:
            self._client._transport.call_within(
                30.0, "POST", f"/chats/{quote_id(self.chat_id, 'chat_id')}/stop", retried_conflict=lambda: None
            )

    def _stop_quietly(self) -> None:
        try:
            self.stop()
        except ConflictError:
            pass  # already over
        except Exception as exc:  # the caller already has the error that made us stop
            log.warning("could not stop chat %s: %s", self.chat_id, exc)
