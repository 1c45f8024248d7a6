"""Safe, bounded YAML loading that records the line of every mapping key, for error messages.

Recipes are small, plain mappings. What is not is refused with file:line before it can hurt: files over
MAX_BYTES (a 20 MB recipe took minutes), anchors and aliases (a 432-byte alias bomb ate memory until
killed), nesting deeper than MAX_DEPTH (RecursionError), duplicate keys (the last silently won) and keys
that are not strings (`on:` is a boolean in YAML 1.1; `123:` an int). The text is parsed once.
"""
from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import yaml

from .errors import Problem, RecipeError

KeyPath = tuple[str, ...]
MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
TOO_DEEP = "nested deeper than"


class _Loader(yaml.SafeLoader):
    """SafeLoader (no code, no python tags) that reads 1e-4 as a float, as people write it, and refuses
    anchors and aliases (recipes share settings through `extends:`)."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent) or getattr(self.peek_event(), "anchor", None):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "anchors and aliases (&name, *name) are not allowed in "
                                                          "recipes; share settings with `extends:`",
                                              event.start_mark)
        return super().compose_node(parent, index)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+][0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def parse_scalar(text: str) -> Any:
    """Parse one command-line value with the same rules as a recipe file (bounded the same way)."""
    if len(text) > MAX_BYTES:
        raise ValueError(f"value longer than {MAX_BYTES} bytes")
    return yaml.load(text, Loader=_Loader)


def _check_node(node: yaml.Node, prefix: KeyPath, depth: int, lines: dict[KeyPath, int],
                problems: list[Problem], src: str) -> None:
    """Record key lines; report depth, and report and drop duplicate and non-string keys (so the rest of the
    recipe is still read and checked: one `on: true` must not hide the other problems)."""
    line = node.start_mark.line + 1
    if depth > MAX_DEPTH:
        problems.append(Problem(src, line, ".".join(prefix), f"{TOO_DEEP} {MAX_DEPTH} levels"))
        return
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_node(item, prefix, depth + 1, lines, problems, src)
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        kept = []
        for k, v in node.value:
            kline = k.start_mark.line + 1
            if not isinstance(k, yaml.ScalarNode) or k.tag != "tag:yaml.org,2002:str":
                shown = k.value if isinstance(k, yaml.ScalarNode) else "a " + k.id
                hint = (" (YAML 1.1 reads on/off/yes/no as booleans)"
                        if isinstance(k, yaml.ScalarNode) and k.value.lower() in ("on", "off", "yes", "no", "y", "n")
                        else "")
                problems.append(Problem(src, kline, ".".join(prefix), f"key {shown!r} is not a string{hint}; "
                                                                      f"quote it: \"{shown}\":"))
                continue
            if k.value in seen:
                problems.append(Problem(src, kline, ".".join(prefix + (k.value,)),
                                        f"duplicate key (also on line {seen[k.value]}); keep one"))
                continue
            seen[k.value] = kline
            kept.append((k, v))
            path = prefix + (k.value,)
            lines[path] = kline
            _check_node(v, path, depth + 1, lines, problems, src)
        node.value = kept


def load_yaml(path: Path) -> tuple[dict[str, Any], dict[KeyPath, int], list[Problem]]:
    """Return (mapping, key path -> line, key problems). Key problems (duplicate or non-string keys) leave the
    rest readable, so they come back with the mapping; anything else raises RecipeError naming file and line."""
    src = str(path)
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(st.st_mode):          # /dev/zero would never end, a FIFO would wait for a writer
            raise RecipeError([Problem(src, None, "", "not a regular file (a device, FIFO or socket); a recipe is "
                                                      "a YAML file")])
        if st.st_size > MAX_BYTES:
            raise RecipeError([Problem(src, None, "", f"{st.st_size:,} bytes: a recipe is at most "
                                                       f"{MAX_BYTES:,}; is this the right file?")])
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)          # bounded: a size of 0 (/proc files) says nothing
        if len(raw) > MAX_BYTES:
            raise RecipeError([Problem(src, None, "", f"more than {MAX_BYTES:,} bytes: is this the right file?")])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise RecipeError([Problem(src, None, "", "file not found")]) from None
    except IsADirectoryError:
        raise RecipeError([Problem(src, None, "", "is a directory, not a recipe file")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError([Problem(src, None, "", f"cannot read: {e}")]) from None
    loader = None
    try:
        loader = _Loader(text)                    # its reader refuses NUL and other control characters
        node = loader.get_single_node()
        problems: list[Problem] = []
        lines: dict[KeyPath, int] = {}
        if node is not None:
            _check_node(node, (), 0, lines, problems, src)
        if any(p.message.startswith(TOO_DEEP) for p in problems):     # would not construct: stop here
            raise RecipeError(problems)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(e, "problem", None) or str(e)
        if isinstance(e, yaml.reader.ReaderError):         # a control character: no mark, a position
            line = text.count("\n", 0, e.position) + 1
            char = chr(e.character) if isinstance(e.character, int) else e.character
            what = f"character {char!r} is not allowed in YAML; fix: remove it"
        raise RecipeError([Problem(src, line, "", f"invalid YAML: {what}")]) from None
    except RecursionError:
        raise RecipeError([Problem(src, None, "", f"nested too deeply to read (at most {MAX_DEPTH} levels)")]) \
            from None
    finally:
        if loader is not None:
            loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(problems + [Problem(src, 1, "", f"a recipe is a mapping of keys, got {type(data).__name__}")])
    return data, lines, problems
