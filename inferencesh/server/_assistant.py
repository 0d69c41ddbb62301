"""The scripted assistant of the local server (``infsh/assistant``): deterministic, offline.

Each turn it thinks aloud ("Let me think", " about that."), then answers
word by word. What it answers depends only on the message and the chat's
earlier messages:

=====================================  ==============================================
the message                            the answer
=====================================  ==============================================
``... weather in <City> ...``          a ``get_weather {"city": "<City>"}`` tool call;
                                       once answered: ``The weather in <City> is
                                       <result>.``
``what did I say ...``                 ``You said "<the previous message>".`` (or
                                       ``You have not said anything before.``)
``count to <n>``                       ``1 2 3 ... <n>.`` (n at most 10000)
the word ``fail``                      ``Let me try.``, then the turn ends ``failed``
anything else                          ``You said "<message>". This is turn <k> of
                                       our chat.``
=====================================  ==============================================

``<City>`` is the capitalised words after "weather in" (or the one word
there when it is lower case). The script talks through a ``Voice``, which
numbers, stores and paces what it says (see ``_agents``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

THINKING = ("Let me think", " about that.")
MAX_COUNT = 10_000

_WEATHER = re.compile(r"\bweather\s+in\s+", re.IGNORECASE)
_CITY = re.compile(r"[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*|[\w'-]+")
_MEMORY = re.compile(r"\bwhat\s+did\s+i\s+(?:say|ask|tell)\b", re.IGNORECASE)
_COUNT = re.compile(r"\bcount\s+to\s+(\d+)\b", re.IGNORECASE)
_FAIL = re.compile(r"\bfail\b", re.IGNORECASE)
_WORDS = re.compile(r"\s*\S+")


class AssistantFailed(Exception):
    """The script ends its turn ``failed``; the message is the ``done`` event's error."""


class Voice(Protocol):
    """What the script can do in one turn."""

    async def think(self, chunk: str) -> None:
        """Send the next chunk of thinking."""

    async def say(self, chunk: str) -> None:
        """Send the next chunk of the answer."""

    async def use_tool(self, name: str, args: dict[str, Any]) -> str:
        """Ask the client to run a tool and wait for its result."""


def words(text: str) -> list[str]:
    """``text`` split into chunks of one word each with its leading space; they join back to ``text``."""
    return _WORDS.findall(text)


def city_of(message: str) -> str | None:
    """The city a weather question asks about, or None when the message is not one."""
    found = _WEATHER.search(message)
    if found is None:
        return None
    city = _CITY.match(message, found.end())
    return city.group(0) if city is not None else None


async def _answer(voice: Voice, text: str) -> None:
    for chunk in words(text):
        await voice.say(chunk)


async def assistant(voice: Voice, message: str, earlier: Sequence[str]) -> None:
    """One turn: answer ``message`` given the chat's ``earlier`` user messages (oldest first).

    Raises ``AssistantFailed`` when asked to fail.
    """
    for chunk in THINKING:
        await voice.think(chunk)
    city = city_of(message)
    if city is not None:
        result = await voice.use_tool("get_weather", {"city": city})
        await _answer(voice, f"The weather in {city} is {result.strip()}.")
        return
    if _MEMORY.search(message):
        if earlier:
            await _answer(voice, f'You said "{earlier[-1]}".')
        else:
            await _answer(voice, "You have not said anything before.")
        return
    count = _COUNT.search(message)
    if count is not None:
        n = max(1, min(int(count.group(1)), MAX_COUNT))
        await _answer(voice, " ".join(str(i) for i in range(1, n + 1)) + ".")
        return
    if _FAIL.search(message):
        await _answer(voice, "Let me try.")
        raise AssistantFailed("the assistant was asked to fail")
    await _answer(voice, f'You said "{message}". This is turn {len(earlier) + 1} of our chat.')
