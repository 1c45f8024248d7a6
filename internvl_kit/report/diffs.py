"""Recipe differences: a run's recipe against the base it extends, and several runs' recipes against each other."""
from __future__ import annotations

import json
from typing import Any

MISSING = object()
# keys every run differs in without it saying anything about the training
_PER_RUN = {"output_dir", "description"}


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (`internvl.max_num`); lists and scalars are leaf values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def show(value: Any) -> str:
    if value is MISSING:
        return "(unset)"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def against_base(recipe: dict[str, Any], base: dict[str, Any] | None) -> list[tuple[str, Any, Any]]:
    """(key, base value or MISSING, run value or MISSING) for each key the recipe and its overrides changed."""
    if base is None:
        return []
    mine, theirs = flatten(recipe), flatten(base)
    return [(k, theirs.get(k, MISSING), mine.get(k, MISSING)) for k in sorted(mine.keys() | theirs.keys())
            if mine.get(k, MISSING) != theirs.get(k, MISSING)]


def between(recipes: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """(key, each run's value or MISSING) for each key whose value is not the same in every run."""
    flat = [flatten(r) for r in recipes]
    keys = sorted(set().union(*flat) - _PER_RUN) if flat else []
    out = []
    for key in keys:
        values = [f.get(key, MISSING) for f in flat]
        if any(v != values[0] for v in values[1:]):
            out.append((key, values))
    return out
