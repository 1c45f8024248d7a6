"""Validate messages/images JSONL files: every problem as `PATH:LINE: severity CODE: message`.

Streams the file (memory stays flat), never stops at a bad line, and reads only image headers
unless --deep. With a Counter it also checks each sample's token length exactly as swift's
template would count it.
"""
from __future__ import annotations

import os
import re
from collections import Counter as Tally
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from . import images as img
from .schema import fast_check, explain
from .tokens import Counter

try:
    import orjson
    _loads: Callable[[bytes], Any] = orjson.loads
    _JSONError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - orjson is a dependency; json is the fallback
    import json
    _loads, _JSONError = json.loads, json.JSONDecodeError

CODES = {
    # errors
    "utf8": "line is not valid UTF-8",
    "json": "line is not a JSON object",
    "schema": "row does not match the messages schema",
    "roles": "role order swift cannot train on",
    "empty": "a message has empty content",
    "extra-tags": "more <image>/<video> tags than media files",
    "image-missing": "image file not found",
    "image-bad": "image file unreadable",
    "too-long": "sample longer than max_length",
    "file": "input file cannot be read",
    # warnings
    "missing-tags": "fewer tags than media (swift prepends them)",
    "relative-path": "relative image path that swift will not resolve",
    "duplicate": "row identical to an earlier one",
    "blank": "blank line",
    "remote-media": "remote media not checked",
    "video-length": "token length of a video sample not checked",
}
HEADER_CACHE = 8192      # images shared by rows are usually near each other
ERRORS = {"utf8", "json", "schema", "roles", "empty", "extra-tags", "image-missing", "image-bad", "too-long",
          "file"}


@dataclass(frozen=True)
class Issue:
    path: str
    line: int
    code: str
    message: str

    @property
    def severity(self) -> str:
        return "error" if self.code in ERRORS else "warning"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity} {self.code}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "severity": self.severity, "code": self.code,
                "message": self.message}


@dataclass
class Options:
    max_length: int | None = None
    max_num: int | None = None
    image_root: str | None = None     # like swift's ROOT_IMAGE_DIR
    deep: bool = False
    counter: Counter | None = None


@dataclass
class Report:
    samples: int = 0
    counts: Tally = field(default_factory=Tally)
    lengths: list[int] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(n for c, n in self.counts.items() if c in ERRORS)

    @property
    def warnings(self) -> int:
        return sum(n for c, n in self.counts.items() if c not in ERRORS)


@dataclass
class Sample:
    """A row that passed the structural checks, with its images resolved and measured."""
    row: dict[str, Any]
    image_sizes: list[tuple[int, int]]
    image_paths: list[str]


def _as_list(v: Any) -> list[str]:
    return [] if v is None else [v] if isinstance(v, str) else list(v)


class Validator:
    def __init__(self, opts: Options):
        self.opts = opts
        self._headers: dict[str, img.ImageInfo | str] = {}
        self._check = fast_check()

    # -- images ---------------------------------------------------------------------------
    def resolve(self, ref: str, dataset_dir: Path) -> tuple[str | None, bool]:
        """(path swift would open or None, whether it only resolves relative to the dataset file)."""
        if os.path.isabs(ref) or os.path.exists(ref):
            return (ref if os.path.exists(ref) else None), False
        if self.opts.image_root and os.path.exists(os.path.join(self.opts.image_root, ref)):
            return os.path.join(self.opts.image_root, ref), False
        local = dataset_dir / ref
        return (str(local), True) if local.exists() else (None, False)

    def header(self, path: str) -> img.ImageInfo | str:
        """ImageInfo, or the reason the file is unreadable (cached: images are often shared)."""
        got = self._headers.get(path)
        if got is None:
            if len(self._headers) >= HEADER_CACHE:   # bounded: memory stays flat on huge datasets
                self._headers.clear()
            try:
                got = img.decode(path) if self.opts.deep else img.read_header(path)
                if got.width <= 0 or got.height <= 0:
                    got = f"image has no pixels ({got.width}x{got.height})"
            except (img.ImageError, OSError) as e:
                got = str(e)
            self._headers[path] = got
        return got

    # -- one row --------------------------------------------------------------------------
    def check_row(self, row: Any, dataset_dir: Path, report: Callable[[str, str], None]) -> Sample | None:
        """Structural, role, tag and media checks; a Sample only when the row has no error."""
        errors = 0

        def emit(code: str, message: str) -> None:
            nonlocal errors
            errors += code in ERRORS
            report(code, message)

        try:
            self._check(row)
        except Exception:  # noqa: BLE001 - fastjsonschema raises JsonSchemaValueException
            if not isinstance(row, dict):
                emit("json", f"expected a JSON object per line, got {type(row).__name__}")
                return None
            for msg in explain(row):
                emit("schema", f"{msg}; fix: each row is {{\"messages\": [{{\"role\", \"content\"}}...], "
                               f"\"images\": [paths]}}")
            return None
        msgs = row["messages"]
        roles = [m["role"] for m in msgs]
        first = 1 if roles[0] == "system" else 0
        for i in range(first, len(roles)):
            want = "user" if (i - first) % 2 == 0 else "assistant"
            if ("user" if roles[i] == "tool" else roles[i]) != want:
                emit("roles", f"messages[{i}] is {roles[i]!r} where {want!r} is expected; fix: an optional "
                              f"system message first, then user/assistant turns alternating")
                break
        else:
            if len(roles) == first:
                emit("roles", "no user/assistant messages; fix: add a user turn and the assistant answer")
            elif roles[-1] != "assistant":
                emit("roles", "the last message is not the assistant's; fix: end with the answer to train on")
        for i, m in enumerate(msgs):
            if not m["content"].strip():
                emit("empty", f"messages[{i}] ({m['role']}) has empty content")
        text = "\n".join(m["content"] for m in msgs)
        medias = {"image": _as_list(row.get("images")), "video": _as_list(row.get("videos"))}
        for kind, files in medias.items():
            tags = len(re.findall(f"<{kind}>", text))
            if tags > len(files):
                emit("extra-tags", f"{tags} <{kind}> tags but {len(files)} {kind}s; swift keeps the extra "
                                   f"tags as literal text; fix: remove {tags - len(files)} tag(s) or add the {kind}s")
            elif 0 < len(files) and tags < len(files):
                emit("missing-tags", f"{len(files)} {kind}s but {tags} <{kind}> tags; swift prepends "
                                     f"{len(files) - tags} tag(s) to the first user message")
        sizes, paths, ok = [], [], True
        for kind, files in medias.items():
            for ref in files:
                if ref.startswith(("http://", "https://")):
                    emit("remote-media", f"{kind} {ref!r} is a URL: not checked offline, fetched by swift "
                                         f"at every epoch")
                    ok = False
                    continue
                if ref.startswith("data:"):
                    ok = False
                    continue
                path, dataset_relative = self.resolve(ref, dataset_dir)
                if path is None:
                    where = "" if os.path.isabs(ref) else (
                        f" (relative paths are resolved against the current directory {os.getcwd()}"
                        f"{', then --image-root' if self.opts.image_root else ''}; fix: absolute paths "
                        f"or --image-root)")
                    emit("image-missing", f"{kind} {ref!r} not found{where}")
                    ok = False
                    continue
                if dataset_relative:
                    emit("relative-path", f"{kind} {ref!r} exists only relative to the dataset file "
                                          f"({path}); swift resolves against the current directory and "
                                          f"will not find it; fix: absolute paths, or ROOT_IMAGE_DIR={dataset_dir}")
                if kind == "video":
                    continue
                info = self.header(path)
                if isinstance(info, str):
                    emit("image-bad", f"image {ref!r}: {info}")
                    ok = False
                    continue
                sizes.append((info.width, info.height))
                paths.append(path)
        return Sample(row, sizes, paths) if ok and not errors else None

    # -- token length ---------------------------------------------------------------------
    def check_length(self, sample: Sample, emit: Callable[[str, str], None]) -> int | None:
        counter, limit = self.opts.counter, self.opts.max_length
        if counter is None:
            return None
        if sample.row.get("videos"):
            emit("video-length", "length not checked: video frames are sampled by swift at load time "
                                 "(VIDEO_SEGMENTS frames x tiles per frame x tokens per tile)")
            return None
        total = counter.total(sample.row["messages"], sample.image_sizes, self.opts.max_num)
        if limit is not None and total > limit:
            b = counter.count(sample.row["messages"], sample.image_sizes, self.opts.max_num)
            tiles = "+".join(map(str, b.tiles)) or "0"
            fix = f"max_length={b.total}"
            current = self.opts.max_num or counter.tiling.max_num
            for m in range(current - 1, 0, -1) if b.tiles else ():
                smaller = counter.total(sample.row["messages"], sample.image_sizes, m)
                if smaller <= limit:
                    fix += f", or internvl.max_num={m} (-> {smaller} tokens)"
                    break
            kind = "" if counter.exact else " (estimated: model tokenizer not found locally)"
            emit("too-long", f"{b.total} tokens > max_length {limit}{kind}: text {b.text} + template "
                             f"{b.template} + image {b.image} ({tiles} tiles x {counter.tiling.tokens_per_tile}); "
                             f"swift would drop this sample silently; fix: {fix}")
        return total

    # -- a file ---------------------------------------------------------------------------
    def lines(self, path: Path) -> Iterator[tuple[int, bytes]]:
        with open(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                yield n, raw

    def validate_file(self, path: Path, report: Report, sink: Callable[[Issue], None],
                      on_sample: Callable[[Sample], None] | None = None) -> None:
        """Check every line of path; on_sample sees each row that passed the row checks."""
        shown = str(path)
        seen: dict[int, int] = {}
        dataset_dir = path.resolve().parent
        try:
            for n, raw in self.lines(path):
                def emit(code: str, message: str, _n: int = n) -> None:
                    report.counts[code] += 1
                    sink(Issue(shown, _n, code, message))

                stripped = raw.strip()
                if not stripped:
                    emit("blank", "blank line (skipped)")
                    continue
                report.samples += 1
                try:
                    stripped.decode("utf-8")
                except UnicodeDecodeError as e:
                    emit("utf8", f"invalid UTF-8 at byte {e.start}; fix: re-encode the file as UTF-8")
                    continue
                try:
                    row = _loads(stripped)
                except _JSONError as e:
                    emit("json", f"invalid JSON: {e}")
                    continue
                key = hash(stripped)
                if key in seen:
                    emit("duplicate", f"same row as line {seen[key]}")
                else:
                    seen[key] = n
                sample = self.check_row(row, dataset_dir, emit)
                if sample is not None:
                    if on_sample is not None:
                        on_sample(sample)
                    total = self.check_length(sample, emit)
                    if total is not None:
                        report.lengths.append(total)
        except OSError as e:
            report.counts["file"] += 1
            sink(Issue(shown, 0, "file", f"cannot read: {e.strerror or e}"))
