"""Checks and conversions of decoded wire values (JSON) into what the models hold; ``ProtocolError`` otherwise."""

from __future__ import annotations

import math
from typing import Any, Optional

from ._errors import ProtocolError


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)  # json.loads accepts NaN and Infinity; int() of them raises
    return isinstance(value, int) and not isinstance(value, bool)


def _excerpt(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _logs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        for line in value:
            if not isinstance(line, str):
                break
        else:
            return tuple(value)
    raise ProtocolError(f"logs is not a list of strings: {_excerpt(value)}")


def log_record_lines(records: Any) -> tuple[str, ...]:
    """Every line of a hosted TaskDTO's ``logs`` (records ``{"id", "content", ...}``), in order.

    Plain strings are taken as lines too; anything else is skipped (HOSTED.md
    lists many fields a client may ignore).
    """
    if not isinstance(records, list):
        return ()
    lines: list[str] = []
    for record in records:
        content = record.get("content") if isinstance(record, dict) else record
        if isinstance(content, str) and content:
            lines.extend(content.splitlines())
    return tuple(lines)


def _error_text(value: Any) -> Optional[str]:
    """A hosted ``error``: a string, or an object whose ``message`` (or JSON) stands for it."""
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        return str(value["message"])
    return _excerpt(value, 500)


def _optional_str(value: Any, name: str) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    raise ProtocolError(f"{name} is not a string: {_excerpt(value)}")
