"""The recipe JSON Schema (internvl_kit/recipe/schema.json, generated from swift by schema_gen.py):
the one definition of every recipe key. It lives in the package, so a wheel install carries it."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
SCHEMA_PATH = Path(__file__).with_name("schema.json")


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def subschema(path: tuple[str, ...]) -> dict[str, Any] | None:
    """Schema of the key at path, or None when the key is unknown."""
    node: dict[str, Any] | None = schema()
    for part in path:
        props = (node or {}).get("properties")
        if not props or part not in props:
            return None
        node = props[part]
    return node


def is_swift_key(key: str) -> bool:
    """Top-level keys become `swift sft --key`; toolkit keys are marked x-swift: false."""
    sub = subschema((key,))
    return sub is not None and sub.get("x-swift", True) and "x-alias-of" not in sub


def known_keys(path: tuple[str, ...] = ()) -> list[str]:
    sub = subschema(path) if path else schema()
    return sorted((sub or {}).get("properties", {}))
