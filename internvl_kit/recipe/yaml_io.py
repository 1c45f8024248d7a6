"""Safe YAML loading that also records the line of every mapping key, for error messages."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import Problem, RecipeError

KeyPath = tuple[str, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader (no code, no python tags) that also reads 1e-4 as a float, as people write it."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+][0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def parse_scalar(text: str) -> Any:
    """Parse one command-line value with the same rules as a recipe file."""
    return yaml.load(text, Loader=_Loader)


def _key_lines(node: yaml.Node, prefix: KeyPath, out: dict[KeyPath, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                path = prefix + (str(k.value),)
                out[path] = k.start_mark.line + 1
                _key_lines(v, path, out)


def load_yaml(path: Path) -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """Return (mapping, key path -> line). Raises RecipeError naming the file and line."""
    src = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError([Problem(src, None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError([Problem(src, None, "", f"cannot read: {e}")]) from None
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(e, "problem", None) or str(e)
        raise RecipeError([Problem(src, line, "", f"invalid YAML: {what}")]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError([Problem(src, 1, "", f"a recipe is a mapping of keys, got {type(data).__name__}")])
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _key_lines(node, (), lines)
    return data, lines
