"""Recipe problems: each one says where (file:line), which key, what was given and what is allowed."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    source: str          # file path, or "command line"
    line: int | None     # 1-based line in source, when known
    key: str             # dotted key path ("" for the whole recipe)
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class RecipeError(Exception):
    """All problems of a recipe, reported together."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        n = len(problems)
        head = f"recipe has {n} problem{'s' if n != 1 else ''}:"
        super().__init__("\n".join([head] + [f"  {p}" for p in problems]))
