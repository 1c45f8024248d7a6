"""Resolve a recipe: follow `extends:` (deep merge, cycles reported), then apply key=value overrides."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Problem, RecipeError
from .schema import command_of, subschema
from .yaml_io import KeyPath, load_yaml, parse_scalar

CLI = "command line"
MAX_EXTENDS = 32        # parents deep: a longer chain is a mistake (and would exhaust the stack)


@dataclass
class Resolved:
    data: dict[str, Any]
    origins: dict[KeyPath, tuple[str, int | None]] = field(default_factory=dict)  # key -> (source, line)
    chain: list[Path] = field(default_factory=list)                              # base first, leaf last
    notes: list[str] = field(default_factory=list)                               # harmless, worth saying
    key_problems: list[Problem] = field(default_factory=list)   # dropped keys: reported with the rest's check

    def where(self, path: KeyPath) -> tuple[str, int | None]:
        """Source and line of the nearest key on path that has one."""
        for n in range(len(path), 0, -1):
            if path[:n] in self.origins:
                return self.origins[path[:n]]
        return (str(self.chain[-1]) if self.chain else CLI, None)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else in `over` replaces what `base` had."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _resolve_file(path: Path, stack: list[Path], problems: list[Problem], res: Resolved) -> dict[str, Any]:
    try:
        path = path.resolve()
    except (RuntimeError, OSError) as e:          # a symlink loop (RuntimeError before Python 3.13)
        raise RecipeError([Problem(str(path), None, "", f"cannot read: {e}")]) from None
    if path in stack:
        cycle = " -> ".join(str(p) for p in stack[stack.index(path):] + [path])
        problems.append(Problem(str(stack[-1]), None, "extends", f"inheritance cycle: {cycle}"))
        return {}
    if len(stack) >= MAX_EXTENDS:
        problems.append(Problem(str(stack[-1]), None, "extends", f"more than {MAX_EXTENDS} levels of extends "
                                                                 f"(from {stack[0]}); flatten the chain"))
        return {}
    data, lines, key_problems = load_yaml(path)
    res.key_problems += key_problems
    parents = data.pop("extends", None)
    merged: dict[str, Any] = {}
    if parents is not None:
        line = lines.get(("extends",))
        if isinstance(parents, str):
            parents = [parents]
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            problems.append(Problem(str(path), line, "extends",
                                    f"expected a file name or a list of them, got {parents!r}"))
            parents = []
        for parent in parents:
            ppath = (path.parent / parent)
            if not ppath.is_file():
                problems.append(Problem(str(path), line, "extends",
                                        f"parent recipe {parent!r} not found (looked for {ppath})"))
                continue
            merged = deep_merge(merged, _resolve_file(ppath, stack + [path], problems, res))
    res.chain.append(path)
    for key, ln in lines.items():
        res.origins[key] = (str(path), ln)
    return deep_merge(merged, data)


def _did_you_mean(path: KeyPath) -> str:
    import difflib
    from .schema import known_keys
    close = difflib.get_close_matches(path[-1], known_keys(path[:-1]), n=1, cutoff=0.6)
    return f"; did you mean {'.'.join(path[:-1] + (close[0],))!r}?" if close else ""


def _typed_value(path: KeyPath, raw: str, command: str = "sft") -> Any:
    """Parse an override value by the type the schema declares for that key under the recipe's command:
    strings stay strings (`system=yes` is "yes"), arrays take `[a,b]` or one bare item, the rest is YAML."""
    sub = subschema(path, command) or {}
    kinds = sub.get("type")
    kinds = {kinds} if isinstance(kinds, str) else set(kinds or ())
    nullable = "null" in kinds or None in sub.get("enum", [])
    if nullable and raw.strip() in ("null", "~", "None"):
        return None
    if kinds == {"string"} or kinds == {"string", "null"} or (
            "enum" in sub and all(isinstance(v, str) or v is None for v in sub["enum"])):
        return raw
    if "array" in kinds:
        if raw.strip().startswith("["):
            value = parse_scalar(raw)
            items = (sub.get("items") or {}).get("type")
            # scalars become the item type's strings (paths like 0001.jsonl); nested lists stay lists
            # and fail validation instead of turning into the string "['a', 'b']"
            return [str(v) if items == "string" and isinstance(v, (int, float, bool)) else v for v in value] \
                if isinstance(value, list) else value
        return [raw]
    return parse_scalar(raw)


def _command_after(data: dict[str, Any], overrides: list[str]) -> str:
    """The swift command the recipe runs once the overrides are applied (an override may set rlhf_type)."""
    rlhf_type = data.get("rlhf_type")
    for arg in overrides:
        key, sep, raw = arg.partition("=")
        if arg == "~rlhf_type":
            rlhf_type = None
        elif sep and key == "rlhf_type":
            rlhf_type = None if raw.strip() in ("", "null", "~", "None") else raw
    return command_of({"rlhf_type": rlhf_type})


def apply_overrides(res: Resolved, overrides: list[str], problems: list[Problem]) -> None:
    """`key=value` sets (dotted keys reach nested mappings); `~key` deletes."""
    command = _command_after(res.data, overrides)
    for arg in overrides:
        if arg.startswith("~"):
            path = tuple(arg[1:].split("."))
            node = res.data
            for part in path[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict) and path[-1] in node:
                del node[path[-1]]
            elif subschema(path) is not None:       # a real key the recipe leaves unset: already deleted
                res.notes.append(f"{arg}: {arg[1:]} is not set by the recipe; nothing to delete")
            else:
                problems.append(Problem(CLI, None, arg[1:], f"cannot delete {arg[1:]!r}: no such key"
                                                            f"{_did_you_mean(path)}"))
            continue
        key, sep, raw = arg.partition("=")
        if not sep or not key or any(not p for p in key.split(".")):
            problems.append(Problem(CLI, None, "", f"override {arg!r} is not key=value (or ~key to delete)"))
            continue
        path = tuple(key.split("."))
        try:
            value = _typed_value(path, raw, command)
        except Exception as e:  # noqa: BLE001 - yaml raises several types; all mean "unparseable"
            problems.append(Problem(CLI, None, key, f"cannot parse value {raw!r}: {e}"))
            continue
        node = res.data
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
        res.origins[path] = (CLI, None)


def base_of(path: str | Path) -> dict[str, Any]:
    """What the recipe's parents (its `extends:`) resolve to on their own: the base its own keys and the
    overrides change (a run report shows the difference). Empty for a recipe without parents."""
    data, _, _ = load_yaml(Path(path).resolve())
    parents = data.get("extends") or []
    problems: list[Problem] = []
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        ppath = Path(path).resolve().parent / str(parent)
        if ppath.is_file():
            merged = deep_merge(merged, _resolve_file(ppath, [Path(path).resolve()], problems, Resolved(data={})))
    return copy.deepcopy(merged)


def resolve(path: str | Path, overrides: list[str] | None = None) -> Resolved:
    """Load path with its parents and overrides; raises RecipeError listing every problem found."""
    problems: list[Problem] = []
    res = Resolved(data={})
    res.data = copy.deepcopy(_resolve_file(Path(path), [], problems, res))
    apply_overrides(res, list(overrides or []), problems)
    if problems:
        raise RecipeError(res.key_problems + problems)
    return res
