"""Recipes: YAML data validated by internvl_kit/recipe/schema.json, with `extends:` and key=value overrides.

    recipe = load_recipe("recipes/tiny-demo.yaml", ["lora_rank=16"])
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Problem, RecipeError
from .loader import CLI, resolve
from .schema import RECIPES_DIR, SCHEMA_PATH, command_of, is_swift_key, schema
from .validate import HF_TEMPLATE, validate

__all__ = ["Recipe", "RecipeError", "Problem", "load_recipe", "RECIPES_DIR", "SCHEMA_PATH",
           "command_of", "is_swift_key", "schema", "HF_TEMPLATE"]


@dataclass
class Recipe:
    path: Path
    data: dict[str, Any]
    overrides: list[str] = field(default_factory=list)
    chain: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def knobs(self) -> dict[str, int]:
        """InternVL tiling knobs (the `internvl:` section)."""
        return dict(self.data.get("internvl") or {})

    @property
    def command(self) -> str:
        """The swift command this recipe runs: rlhf (preference tuning) once it sets rlhf_type, else sft."""
        return command_of(self.data)

    @property
    def is_hf(self) -> bool:
        return self.data.get("template") == HF_TEMPLATE


def load_recipe(path: str | os.PathLike, overrides: list[str] | None = None) -> Recipe:
    """Resolve and validate; raises RecipeError with every problem (file:line, key, given, allowed)."""
    res = resolve(path, overrides)
    problems, warnings = validate(res)
    problems = res.key_problems + problems
    if problems:
        raise RecipeError(sorted(problems, key=lambda p: (p.source == CLI, p.source, p.line or 0)))
    order = list(schema()["properties"])
    data = {k: res.data[k] for k in sorted(res.data, key=order.index)}
    return Recipe(path=Path(path), data=data, overrides=list(overrides or []),
                  chain=res.chain, warnings=res.notes + warnings)
