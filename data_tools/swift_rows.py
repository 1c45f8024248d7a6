"""A row as swift 4.6's dataset loader and template see it.

swift trains on more than the canonical `{"messages": [...], "images": [...]}`: its loader converts
ShareGPT (`conversations`, `from`/`value`), alpaca (`instruction`/`input`/`output`) and
query/response/history rows itself, and its template joins consecutive turns of one role, flattens
OpenAI-style content lists (and Anthropic image blocks) and turns `<img>path</img>` into images.
`normalize` applies the same rules, so validate checks and counts what swift will train on; `RowError`
is a row swift drops or fails on.
"""
from __future__ import annotations

import ast
import json
import os
import re
from typing import Any

ROLE_KEYS, CONTENT_KEYS = ("role", "from"), ("content", "value")
USER_ROLES, ASSISTANT_ROLES = ("user", "human"), ("assistant", "gpt", "bot")
TOOL_CALL_ROLES, TOOL_RESPONSE_ROLES = ("function_call",), ("function_response", "observation", "observations")
ROLES = {"system", "user", "assistant", "tool", "tool_call", "tool_response"}
MESSAGE_KEYS = ("messages", "conversation", "conversations")
SYSTEM_KEYS = ("system", "system_prompt")
QUERY_KEYS = ("query", "prompt", "input", "instruction", "question", "problem")
RESPONSE_KEYS = ("response", "answer", "output", "targets", "target", "answer_key", "answers", "solution", "text",
                 "completion", "content")
_IMG_TAG = re.compile(r"<img>(.+?)</img>")


class RowError(Exception):
    """swift's loader drops the row, or its template fails on it (message says why and the fix)."""


def _first(row: dict, keys: tuple[str, ...]) -> Any:
    return next((row[k] for k in keys if k in row), None)


def _repair(messages: Any) -> Any:
    """swift accepts a messages column holding a JSON (or Python literal) string."""
    if isinstance(messages, str):
        try:
            return json.loads(messages)
        except ValueError:
            try:
                return ast.literal_eval(messages)
            except (ValueError, SyntaxError):
                raise RowError("messages is a string that is neither JSON nor a Python literal") from None
    return messages


def _from_messages(row: dict, key: str) -> tuple[list[dict], str]:
    messages = _repair(row.pop(key))
    if not messages or not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise RowError(f"{key} is empty or not a list of objects; swift drops the row")
    system = _first(row, SYSTEM_KEYS)
    messages = [dict(m) for m in messages]
    for m in messages:
        for std, aliases in (("role", ROLE_KEYS), ("content", CONTENT_KEYS)):
            for alias in aliases:
                if alias in m:
                    m[std] = m.pop(alias)
    if "role" not in messages[0] and "content" not in messages[0]:         # [{"user": q, "assistant": a}, ...]
        out = [{"role": "system", "content": system}] if system is not None else []
        for m in messages:
            q, a = _first(m, USER_ROLES), _first(m, ASSISTANT_ROLES)
            out += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        return out, "pairs"
    if messages[0].get("role") != "system" and system is not None:
        messages.insert(0, {"role": "system", "content": system})
    for m in messages:
        role = m.get("role")
        if role in USER_ROLES:
            m["role"] = "user"
        elif role in ASSISTANT_ROLES:
            m["role"] = "assistant"
        elif isinstance(role, str) and role.replace("-", "_") in TOOL_CALL_ROLES:
            m["role"] = "tool_call"
        elif isinstance(role, str) and role.replace("-", "_") in TOOL_RESPONSE_ROLES:
            m["role"] = "tool_response"
    return messages, "sharegpt" if key != "messages" else "messages"


def _from_response(row: dict, alpaca: bool) -> list[dict]:
    if alpaca:
        instruction, input_ = row.pop("instruction", None), row.pop("input", None)
        query = f"{instruction}\n{input_}" if instruction and input_ else instruction or input_
        if not isinstance(query, str):
            raise RowError("alpaca row with neither instruction nor input text; swift drops it")
        response = row.pop("output", None)
    else:
        query, response = _first(row, QUERY_KEYS), _first(row, RESPONSE_KEYS)
    if isinstance(response, (list, tuple)):
        response = response[0] if response else None          # swift takes the first of several answers
    history = row.pop("history", None) or []
    if isinstance(history, str):
        try:
            history = ast.literal_eval(history)
        except (ValueError, SyntaxError):
            raise RowError("history is a string that is not a Python literal list of [query, response]") from None
    system = _first(row, SYSTEM_KEYS)
    messages = [{"role": "system", "content": system}] if system is not None else []
    for pair in [*history, [query, response]]:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise RowError(f"history entry {pair!r} is not a [query, response] pair")
        for role, content in zip(("user", "assistant"), pair):
            if content is not None:
                messages.append({"role": role, "content": content})
    return messages


def _flatten_contents(row: dict) -> None:
    """OpenAI-style content lists -> text with <image> tags, their media collected in order."""
    media: dict[str, list] = {"images": [], "videos": [], "audios": []}
    for m in row["messages"]:
        content = m.get("content")
        if not isinstance(content, list):
            continue
        text = ""
        for item in content:
            if not isinstance(item, dict) or not isinstance(item.get("type"), str):
                raise RowError("a content list item is not {\"type\": ..., ...}")
            kind = item["type"]
            value = item.get(kind)
            if kind == "text":
                if not isinstance(value, str):
                    raise RowError("a text content item has no text")
                text += value
                continue
            kind = kind[:-4] if kind.endswith("_url") else kind
            text += f"<{kind}>"
            if kind == "image" and "source" in item:          # an Anthropic image block
                value = _anthropic_image(item["source"])
            value = value["url"] if isinstance(value, dict) else value
            if value:
                media.setdefault(f"{kind}s", []).append(value)
        m["content"] = text
    for key, found in media.items():
        if found:
            if row.get(key):
                raise RowError(f"{key} both in content lists and in the row's {key!r} field; swift refuses that "
                               f"mix; fix: keep one")
            row[key] = found


def _anthropic_image(source: Any) -> str:
    """An Anthropic image block's source as swift reads it: a data: URI or a URL."""
    source = source if isinstance(source, dict) else {}
    if source.get("type") == "base64" and source.get("media_type") and source.get("data"):
        return f"data:{source['media_type']};base64,{source['data']}"
    if source.get("type") == "url" and source.get("url"):
        return source["url"]
    raise RowError(f"an Anthropic image block swift cannot read: source {source!r}; fix: "
                   f"{{\"type\": \"base64\", \"media_type\": \"image/png\", \"data\": ...}}")


def _mergeable(a: dict, b: dict) -> bool:
    """Consecutive turns swift's template joins: two user turns, or two answers with the same loss flag
    (swift keeps an answer pair as pieces; with one loss they are tokenized as one text)."""
    if a["role"] != b["role"] or a["role"] not in ("user", "assistant"):
        return False
    return a["role"] == "user" or a.get("loss") == b.get("loss")


def _merge_turns(messages: list[dict]) -> list[dict]:
    out: list[dict] = []
    for m in messages:
        if out and _mergeable(out[-1], m):
            out[-1] = {**out[-1], "content": out[-1]["content"] + m["content"]}
        else:
            out.append(m)
    return out


def media_keys(row: dict) -> dict:
    """`image`/`video`/`audio` read as `images`/`videos`/`audios`, as swift's loader renames those columns
    for every row format (where both are given, swift keeps the plural). A copy when anything changes."""
    if not any(short in row for short in ("image", "video", "audio")):
        return row
    row = dict(row)
    for short, full in (("image", "images"), ("video", "videos"), ("audio", "audios")):
        if short in row and full not in row:
            row[full] = row.pop(short)
    return row


def normalize(row: dict) -> tuple[dict, str]:
    """(the row in messages form, the format it came in); RowError where swift would drop or fail on it.

    Rows in no format swift knows come back unchanged, for the schema check to explain. The row given is
    left as it is (its keys are taken out of a copy)."""
    row = dict(media_keys(row))
    key = next((k for k in MESSAGE_KEYS if k in row), None)
    if key is not None:
        messages, fmt = _from_messages(row, key)
    elif "instruction" in row and "input" in row:
        messages, fmt = _from_response(row, alpaca=True), "alpaca"
    elif any(k in row for k in QUERY_KEYS + RESPONSE_KEYS):
        messages, fmt = _from_response(row, alpaca=False), "query-response"
    else:
        return row, "unknown"
    for k in SYSTEM_KEYS + QUERY_KEYS + RESPONSE_KEYS + ("history",):
        row.pop(k, None)
    for m in messages:
        for extra in set(m) - {"role", "content", "loss", "loss_scale", "name"}:
            m.pop(extra)
        if m.get("role") not in ROLES:
            raise RowError(f"role {m.get('role')!r} is not one swift knows ({', '.join(sorted(ROLES))}); "
                           f"swift drops the row")
        if m.get("content") is None:
            raise RowError(f"a {m['role']} message has no content; swift drops the row")
    row["messages"] = messages
    _flatten_contents(row)
    return template_forms(row), fmt


def template_forms(row: dict) -> dict:
    """What swift's template rewrites in a row already in messages form: consecutive turns joined,
    `<img>path</img>` made images. The row itself when neither applies (the common case, kept cheap)."""
    msgs = row["messages"]
    merge = any(_mergeable(a, b) for a, b in zip(msgs, msgs[1:]))
    tags = not row.get("images") and any("<img>" in m["content"] for m in msgs)
    if not (merge or tags):
        return row
    row = {**row, "messages": _merge_turns(msgs) if merge else [dict(m) for m in msgs]}
    if tags:
        _img_tags(row)
    return row


def _img_tags(row: dict) -> None:
    """`<img>path</img>` in a row without images: swift makes each an <image> tag, and an image where
    the path is a local file."""
    found = []
    for m in row["messages"]:
        if isinstance(m["content"], str) and "<img>" in m["content"]:
            found += [p for p in _IMG_TAG.findall(m["content"]) if os.path.isfile(p)]
            m["content"] = _IMG_TAG.sub("<image>", m["content"])
    if found:
        row["images"] = found
