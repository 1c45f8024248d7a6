"""What the JSON reader under swift's loader (datasets' `json` builder over pyarrow.json) does with a file,
beyond one line at a time: which lines it reads as rows, and when it fails the whole file.

The reader takes several objects on a line, NaN and Infinity, but refuses a key given twice in one object,
a number that overflows a double and a lone surrogate escape. A key whose values mix Arrow types across
rows (a string here, an array there) Arrow refuses too, unless datasets re-encodes the column as JSON
text, which it does by re-parsing every line with ujson; ujson refuses several objects on a line. And when
the first batch has objects of differing shapes (messages with and without `loss`), datasets re-encodes
it before Arrow sees it, and duplicate keys vanish in that round trip. `file_failure` applies these rules
to a file's first batch (datasets reads 10 MiB at a time), asking pyarrow's reader itself which refusal
comes first; validate calls it only for files with such lines, so the common file costs nothing here.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterable

ARROW_KINDS = ((bool, "boolean"), ((int, float), "number"), (str, "string"), (list, "array"), (dict, "object"))


def values(text: str) -> list[Any] | None:
    """Several JSON values on one line, NaN/Infinity allowed (as the Arrow JSON reader takes them), or None."""
    dec, out, pos = json.JSONDecoder(parse_float=_float), [], 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            return out
        try:
            value, pos = dec.raw_decode(text, pos)
        except ValueError:
            return None
        out.append(value)


class _Overflow(float):
    """A number literal too big for a double (Python reads it as inf; Arrow refuses it)."""


def _float(literal: str) -> float:
    value = float(literal)
    return _Overflow(value) if value in (float("inf"), float("-inf")) else value


def refused(parsed: list[Any]) -> str | None:
    """What the Arrow JSON reader refuses in values Python's json module read: a number that overflows a
    double, a string with a lone surrogate escape. Only for lines orjson refused (rare), so a plain walk."""
    stack = list(parsed)
    while stack:
        v = stack.pop()
        if isinstance(v, _Overflow):
            return "a line with a number too big for a double"
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return "a line with a lone surrogate escape (\\ud800-\\udfff) in a string"
        elif isinstance(v, dict):
            stack += v.values()
        elif isinstance(v, list):
            stack += v
    return None


class _Twice(Exception):
    pass


def _no_twice(pairs: list[tuple[str, Any]]) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        raise _Twice(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return d


_TWICE = json.JSONDecoder(object_pairs_hook=_no_twice)


def key_twice(text: str) -> str | None:
    """A key given twice in one object of the line (json keeps the last one), or None."""
    pos = 0
    try:
        while pos < len(text):
            _, pos = _TWICE.raw_decode(text, pos)
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
    except _Twice as e:
        return str(e)
    except ValueError:
        return None
    return None


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def type_conflict(rows: Iterable[tuple[int, dict]]) -> tuple[int, str] | None:
    """The first line where a key's value has another Arrow type than in an earlier row (a string and an
    array, a number and a string, ...: null goes with anything, int with float), and the key, as
    `images` (a string at line 3, an array at line 5); nested keys are named by their path."""
    first: dict[tuple, tuple[str, int]] = {}
    for n, row in rows:
        stack: list[tuple[tuple, Any]] = [((k,), v) for k, v in row.items()]
        while stack:
            path, v = stack.pop()
            if v is None:
                continue
            kind = next(name for types, name in ARROW_KINDS if isinstance(v, types))
            had = first.setdefault(path, (kind, n))
            if had[0] != kind:
                where = "/".join("[]" if p is None else str(p) for p in path)
                return n, f"`{where}` ({_a(had[0])} at line {had[1]}, {_a(kind)} at line {n})"
            if kind == "array":
                stack += [(path + (None,), x) for x in v]
            elif kind == "object":
                stack += [(path + (k,), x) for k, x in v.items()]
    return None


def shapes_differ(rows: list[dict]) -> bool:
    """Whether datasets' first-batch check finds a field of mixed structure (objects with different keys
    below the top level, or objects/arrays beside other values), and so re-encodes the batch with ujson."""
    todo: list[tuple[int, list[Any]]] = [(0, rows)]
    while todo:
        depth, content = todo.pop()
        content = [x for x in content if x is not None]
        if not content:
            continue
        if all(isinstance(x, dict) for x in content):
            if depth and (not content[0] or any(x.keys() != content[0].keys() for x in content)):
                return True
            for key in {k for x in content for k in x}:
                todo.append((depth + 1, [x[key] for x in content if key in x]))
        elif all(isinstance(x, list) for x in content):
            todo.append((depth + 1, [y for x in content for y in x]))
        elif any(isinstance(x, (dict, list)) for x in content):
            return True
    return False


CHUNK = 10 << 20       # datasets' JSON builder reads this much a batch (and then to the end of the line)
BLOCK = max(CHUNK // 32, 16 << 10)      # and gives pyarrow's reader blocks of this size


def _first_batch(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(CHUNK) + f.readline()


_READ = """
import io, sys
import pyarrow as pa, pyarrow.json as paj
batch, block = sys.stdin.buffer.read(), int(sys.argv[1])
while True:
    try:
        paj.read_json(io.BytesIO(batch), read_options=paj.ReadOptions(block_size=block))
        break
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        if ("straddling" in str(e) or "JSON conversion to" in str(e)) and block < len(batch):
            block *= 2                     # as datasets retries
            continue
        sys.stdout.write(str(e))
        break
"""
CRASH, MISSING = "crash", "no pyarrow"


def _arrow_error(batch: bytes) -> str | None:
    """What pyarrow's JSON reader (datasets' first try) raises on the batch, CRASH when it kills the process,
    None when it reads it, MISSING where pyarrow is not installed (then the rules above decide alone). Arrow itself says
    which problem comes first. A batch with a line longer than the reader's block takes the retry path,
    where pyarrow can segfault (it does on a type conflict before such a line, and so does swift's loader):
    that read runs in a child process."""
    import subprocess
    import sys
    try:
        import pyarrow as pa
        import pyarrow.json as paj
    except ImportError:  # pragma: no cover - pyarrow comes with swift's datasets
        return MISSING
    block = len(batch) if len(batch) // 8 > BLOCK else BLOCK
    if block < len(batch) and max(map(len, batch.split(b"\n"))) >= block:
        run = subprocess.run([sys.executable, "-c", _READ, str(block)], input=batch, capture_output=True)
        return CRASH if run.returncode < 0 else run.stdout.decode("utf-8", "replace") or None
    try:
        paj.read_json(io.BytesIO(batch), read_options=paj.ReadOptions(block_size=block, use_threads=False))
        return None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        return str(e)


def file_failure(path: Path, rows: list[tuple[int, dict]], several: list[int], twice: list[tuple[int, str]]
                 ) -> tuple[int, str] | None:
    """(line, why) when the reader fails the whole file because of lines ujson cannot read (`several`) or a
    key given twice (`twice`: line and key), else None. rows: every (line, object) of the file. Which of
    Arrow's refusals comes first (a key twice, or mixed types, which datasets can work around) is Arrow's
    to say: the batch goes through pyarrow's reader, as in datasets."""
    ujson_reads_all = not several
    if ujson_reads_all and shapes_differ([r for _, r in rows]):
        return None                       # re-encoded before Arrow sees it: duplicates are gone
    batch = _first_batch(path)
    error = _arrow_error(batch)
    conflict = type_conflict(rows)
    if error == MISSING:
        error = ("specified twice" if twice and (conflict is None or twice[0][0] <= conflict[0])
                 else "changed from" if conflict else None)
    if error is None:
        return None
    if error == CRASH:
        n, line = next((n, line) for n, line in enumerate(batch.split(b"\n"), 1) if len(line) >= BLOCK)
        return n, (f"a line of {len(line):,} bytes, longer than pyarrow's JSON block ({BLOCK:,}), in a file that "
                   f"mixes types across rows: pyarrow's reader crashes the process on it (a segfault; swift's "
                   f"loader with it)")
    if "changed from" in error:
        if ujson_reads_all:
            return None                   # datasets re-encodes the mixed column and reads on
        mixed = conflict[1] if conflict else error.split("JSON parse error: ")[-1]    # (inside a key given twice)
        return several[0], (f"several JSON objects on one line (or a blank line, or a BOM), which datasets' "
                             f"JSON reader cannot re-encode, while the file mixes types in {mixed}; Arrow "
                             f"refuses a column of mixed types without that re-encoding")
    if "specified twice" in error and twice:
        n, key = twice[0]
        return n, (f"a line with the key {key!r} twice in one object, which the Arrow JSON reader refuses "
                   f"(\"specified twice\")")
    n = twice[0][0] if twice else several[0] if several else 1
    return n, f"a line the Arrow JSON reader refuses ({error})"

