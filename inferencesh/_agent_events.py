"""Agent events: what an agent turn hands out (``Message``, ``ToolCall``, ``Done``) and its ``Reply``.

Frozen, slotted attrs classes like every model; re-exported by ``inferencesh.models``.
The wire shapes they come from are PROTOCOL.md's chat events (``agent``) and
the hosted chats API (``_hosted_chat``).
"""

from __future__ import annotations

from typing import Any, Optional

import attrs

__all__ = ["Done", "Message", "Reply", "ToolCall"]


@attrs.frozen
class Message:
    """A chunk of an agent's answer: ``type`` is ``"text"`` or ``"thinking"``."""

    type: str
    content: str
    message_id: str = ""
    event_id: Optional[int] = None


@attrs.frozen
class ToolCall:
    """The agent asks the client to run tool ``name`` with ``args``; answer with ``submit_tool_result(id, ...)``."""

    id: str
    name: str
    args: Any = attrs.field(factory=dict, hash=False)
    event_id: Optional[int] = None


@attrs.frozen
class Done:
    """The end of an agent turn: ``status`` is ``"completed"``, ``"failed"`` or ``"cancelled"``."""

    status: str
    message_id: str = ""
    error: Optional[str] = None
    event_id: Optional[int] = None


@attrs.frozen
class Reply:
    """The outcome of one agent turn (``Agent.send_message``).

    ``text`` is the whole answer (thinking excluded), ``thinking`` the thinking
    text, ``tool_calls`` every tool call the turn made, in order.
    """

    chat_id: str
    message_id: str
    text: str
    thinking: str
    status: str
    tool_calls: tuple[ToolCall, ...] = ()
    error: Optional[str] = None
