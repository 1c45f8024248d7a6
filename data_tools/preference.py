"""Preference rows (DPO, MPO: `swift rlhf`), read as swift reads them.

A row is a preference row once it has `rejected_response`, `rejected_messages` or `rejected_images`. swift's
loader deletes a row whose rejected_response is null or a string equal to the chosen answer (a ValueError in
its preprocessor, "the data will be deleted"). Its template refuses a rejected_response that is neither a
string nor a list of messages, or that holds a user turn, or that equals the chosen answer as a list. It
builds the rejected side as the conversation up to the last user turn plus the rejected answer, with
`rejected_images` when given and the chosen side's images otherwise (rejected_messages, when given, is the
whole rejected conversation). Each side must fit max_length on its own.
"""
from __future__ import annotations

from typing import Any

KEYS = ("rejected_response", "rejected_messages", "rejected_images")
FIX = "fix: a worse answer than the chosen one (or drop the row: a pair needs two different answers)"


def is_preference(row: dict[str, Any]) -> bool:
    return any(k in row for k in KEYS)


def _last_user(messages: list[Any]) -> int:
    """The index of the last user turn (-1 when none): a rejected_response replaces what follows it."""
    return max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"), default=-1)


def _answers(messages: list[Any]) -> list[Any]:
    """The contents after the last user turn: what a rejected_response replaces."""
    return [m.get("content") if isinstance(m, dict) else m for m in messages[_last_user(messages) + 1:]]


def problems(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(code, message) for what swift's loader or template refuses on the rejected side of a row."""
    out: list[tuple[str, str]] = []
    messages = row["messages"]
    if "rejected_response" in row:
        rejected = row["rejected_response"]
        if rejected is None:
            out.append(("rejected", "rejected_response is null: swift's loader deletes the row; fix: the rejected "
                                    "answer as a string"))
        elif isinstance(rejected, str):
            if rejected == messages[-1]["content"]:
                out.append(("rejected", f"rejected_response equals the chosen answer ({rejected[:60]!r}): swift's "
                                        f"loader deletes the row; {FIX}"))
        elif isinstance(rejected, list):
            if any(not isinstance(m, dict) or not isinstance(m.get("content"), str) for m in rejected):
                out.append(("rejected", "rejected_response as a list must hold {\"role\", \"content\"} messages"))
            elif any(m.get("role") == "user" for m in rejected):
                out.append(("rejected", "rejected_response holds a user turn, which swift's template refuses; fix: "
                                        "only the rejected answer (assistant/tool turns)"))
            elif len(rejected) == 1 and _answers(messages) == [rejected[0]["content"]]:
                out.append(("rejected", f"rejected_response equals the chosen answer: swift's template refuses the "
                                        f"row; {FIX}"))
        else:
            out.append(("rejected", f"rejected_response is a {type(rejected).__name__}: swift's template takes a "
                                    f"string (or a list of assistant messages)"))
    if "rejected_messages" in row:
        rejected = row["rejected_messages"]
        if not (isinstance(rejected, list) and rejected and all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in rejected)):
            out.append(("rejected", "rejected_messages must be a conversation like messages: [{\"role\", "
                                    "\"content\"}, ...] ending with the rejected answer"))
    return out


def rejected_messages(row: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The rejected side's conversation as swift's template builds it, or None when the row has none."""
    if isinstance(row.get("rejected_messages"), list):
        return row["rejected_messages"]
    rejected = row.get("rejected_response")
    if rejected is None:
        return None
    messages = row["messages"]
    tail = [{"role": "assistant", "content": rejected}] if isinstance(rejected, str) else rejected
    return messages[:_last_user(messages) + 1] + tail
