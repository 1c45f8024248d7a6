"""The recipe JSON Schema (internvl_kit/recipe/schema.json, generated from swift by schema_gen.py):
the one definition of every recipe key. It lives in the package, so a wheel install carries it."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
SCHEMA_PATH = Path(__file__).with_name("schema.json")


COMMANDS = ("sft", "rlhf")


@lru_cache(maxsize=2)
def schema(command: str = "sft") -> dict[str, Any]:
    """The recipe schema as `swift COMMAND` reads it: for rlhf, the shared keys it reads otherwise (x-rlhf)
    take that reading."""
    data = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    if command == "rlhf":
        data["properties"] = {k: {**{a: b for a, b in v.items() if a != "x-rlhf"}, **v["x-rlhf"]} if "x-rlhf" in v
                              else v for k, v in data["properties"].items()}
    elif command != "sft":
        raise ValueError(f"unknown swift command {command!r}; one of {COMMANDS}")
    return data


def command_of(data: dict[str, Any]) -> str:
    """The swift command a recipe runs: `swift rlhf` once it names an rlhf_type, else `swift sft`."""
    return "rlhf" if data.get("rlhf_type") is not None else "sft"


def rlhf_only(key: str) -> bool:
    return (schema()["properties"].get(key) or {}).get("x-command") == "rlhf"


def takes_list(key: str) -> bool:
    """Whether either command reads the key as a list (`--loss_type a b c` on swift's own command line)."""
    for command in COMMANDS:
        kinds = (schema(command)["properties"].get(key) or {}).get("type")
        if kinds == "array" or isinstance(kinds, list) and "array" in kinds:
            return True
    return False


def subschema(path: tuple[str, ...], command: str = "sft") -> dict[str, Any] | None:
    """Schema of the key at path, or None when the key is unknown."""
    node: dict[str, Any] | None = schema(command)
    for part in path:
        props = (node or {}).get("properties")
        if not props or part not in props:
            return None
        node = props[part]
    return node


def is_swift_key(key: str) -> bool:
    """Top-level keys become `swift sft --key` (or `swift rlhf --key`); toolkit keys are marked x-swift: false."""
    sub = subschema((key,))
    return sub is not None and sub.get("x-swift", True) and "x-alias-of" not in sub


def known_keys(path: tuple[str, ...] = ()) -> list[str]:
    sub = subschema(path) if path else schema()
    return sorted((sub or {}).get("properties", {}))
