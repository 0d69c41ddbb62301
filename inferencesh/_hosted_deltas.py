"""The hosted dialect's ``delta`` events (HOSTED.md "The task stream"), accumulated into ``partial_output``.

``response`` and ``reasoning`` concatenate, ``tool_calls`` merge by ``index``
(their string parts concatenate), ``usage`` and any other field replace; the
accumulated object has the shape of the app's final output. Used by the
hosted task reader (``_hosted``).
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["DeltaAccumulator"]


class DeltaAccumulator:
    """The output accumulated from ``delta`` events (HOSTED.md): shaped like the app's final output.

    Top-level text (``response``, ``reasoning``, any string) is kept as a list of
    pieces, joined once per ``snapshot``: adding a delta costs the size of the
    delta, not of the text so far, so a long answer in tiny deltas stays linear.
    """

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
        self.pieces: dict[str, list[str]] = {}  # text fields: pieces not joined yet
        self.seen = False

    def add(self, delta: Any) -> None:
        """Merge one ``delta`` object; anything but an object is ignored."""
        if not isinstance(delta, dict):
            return
        self.seen = True
        state, pieces = self.state, self.pieces
        for key, value in delta.items():
            if value is None:
                continue
            if type(value) is str and key != "usage":
                held = pieces.get(key)
                if held is not None:
                    held.append(value)
                    continue
                current = state.get(key)
                if isinstance(current, str) or key not in state:
                    pieces[key] = [current, value] if isinstance(current, str) else [value]
                    state[key] = ""  # keeps the key's place; the text lives in pieces until joined
                    continue
            pieces.pop(key, None)
            if key == "tool_calls" and isinstance(value, list):
                current = state.get(key)
                state[key] = _merge_indexed(current if isinstance(current, list) else [], value)
            else:
                state[key] = value

    def snapshot(self) -> Optional[dict[str, Any]]:
        """A copy of the accumulated output (None before the first delta)."""
        if not self.seen:
            return None
        state = self.state
        for key, held in self.pieces.items():
            if len(held) > 1 or state[key] == "":
                joined = "".join(held)
                state[key] = joined
                held[:] = [joined]
        copy = dict(state)
        if "tool_calls" in copy:
            copy["tool_calls"] = [_deep_copy(call) for call in copy["tool_calls"]]
        return copy


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _merge_into(current: dict[str, Any], incoming: dict[str, Any]) -> None:
    """Strings concatenate, objects merge, anything else replaces (a tool call's parts)."""
    for key, value in incoming.items():
        if value is None:
            continue
        old = current.get(key)
        if key in ("index", "id", "type"):
            current[key] = value
        elif isinstance(value, str) and isinstance(old, str):
            current[key] = old + value
        elif isinstance(value, dict) and isinstance(old, dict):
            _merge_into(old, value)
        else:
            current[key] = _deep_copy(value)


def _merge_indexed(current: list[Any], incoming: list[Any]) -> list[Any]:
    by_index: dict[int, dict[str, Any]] = {}
    for position, item in enumerate(current):
        if isinstance(item, dict):
            by_index[_index(item, position)] = item
    for position, item in enumerate(incoming):
        if not isinstance(item, dict):
            continue
        index = _index(item, position)
        existing = by_index.get(index)
        if existing is None:
            by_index[index] = _deep_copy(item)
        else:
            _merge_into(existing, item)
    return [by_index[key] for key in sorted(by_index)]


def _index(item: dict[str, Any], position: int) -> int:
    """A tool call's ``index``; its position where the index is missing or not an int."""
    index = item.get("index")
    return index if type(index) is int else position
