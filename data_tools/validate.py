"""Validate messages/images JSONL files: every problem as `PATH:LINE: severity CODE: message`.

Streams the file (memory stays flat), never stops at a bad line, and reads only image headers
unless --deep. With a Counter it also checks each sample's token length exactly as swift's
template would count it.
"""
from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from collections import Counter as Tally
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from . import arrow_json, grounding
from . import images as img
from . import preference
from .schema import ROLES, explain, fast_check
from .swift_rows import RowError, media_keys, normalize, template_forms
from .tokens import Breakdown, Counter
from .video import VideoError, VideoInfo
from .video import read_header as read_video_header

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
    "extra-tags": "more <image>/<video> tags than media files",
    "image-missing": "image file not found",
    "image-bad": "image file unreadable",
    "too-long": "sample longer than max_length",
    "mixed-formats": "a row in another format than the file's: swift drops it",
    "tools": "a row with tools, which swift's InternVL templates cannot encode without an agent template",
    "relative-path": "relative image path that only resolves against the dataset file",
    "file": "input file cannot be read",
    "rejected": "a preference row's rejected side swift refuses (null, equal to the chosen answer, a user turn)",
    "grounding": "objects / <ref-object> / <bbox> that swift drops, fails on or reads otherwise than meant",
    "video-bad": "video file that does not open or has no video stream",
    # warnings
    "empty": "a message has empty content (swift trains on it; it teaches nothing)",
    "missing-tags": "fewer tags than media (swift prepends them)",
    "duplicate": "row identical to an earlier one",
    "blank": "blank line",
    "remote-media": "remote media not checked",
    "image-damaged": "an image whose pixel data looks truncated (pixels not decoded without --deep)",
}
HEADER_CACHE = 8192      # images shared by rows are usually near each other
ERRORS = {"utf8", "json", "schema", "roles", "extra-tags", "image-missing", "image-bad", "relative-path",
          "too-long", "tools", "file", "mixed-formats", "rejected", "grounding", "video-bad"}
_PATHLIKE = re.compile(r"\.[A-Za-z]{2,5}$")
MAX_PATH = 2000           # swift takes a longer string for base64 without looking for a file


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
    image_root: str | None = None     # swift's ROOT_IMAGE_DIR (default: that environment variable)
    deep: bool = False
    counter: Counter | None = None
    breakdown: bool = False           # keep each sample's text/template/image split (validate --report)


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
    rejected_sizes: list[tuple[int, int]] | None = None    # a preference row's rejected side (preference.py)
    tokens: Breakdown | None = None                         # check_length's counts, kept for the row's report
    rejected_tokens: int | None = None
    videos: list[VideoInfo] = field(default_factory=list)   # the videos' headers (video.py)


_ROLES = frozenset(ROLES)
_PLAIN_KEYS = frozenset({"messages", "images"})


@dataclass
class FileVerdict:
    """What swift's loader does with a file as a whole, known only once it is read: whether it loads, and
    the codes found for rows after the stream (keyed by line and object on that line), with the rows it
    drops (another format than the file's)."""
    loads: bool = True
    late: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    dropped: set[tuple[int, int]] = field(default_factory=set)

    def add(self, where: tuple[int, int], code: str, dropped: bool) -> None:
        self.late.setdefault(where, []).append(code)
        if dropped:
            self.dropped.add(where)


def _plain(row: dict) -> bool:
    """The common row shape (messages of role/content strings, images a list of paths), checked in
    Python: 3x faster than the compiled schema, which still judges every other row."""
    msgs = row.get("messages")
    if type(msgs) is not list or not msgs or not _PLAIN_KEYS.issuperset(row):
        return False
    for m in msgs:
        if type(m) is not dict or len(m) != 2 or m.get("role") not in _ROLES or type(m.get("content")) is not str:
            return False
    images = row.get("images")
    return images is None or type(images) is list and all(type(i) is str and i for i in images)


def _short(ref: str) -> str:
    return repr(ref if len(ref) <= 80 else ref[:60] + f"... ({len(ref)} chars)")


def _as_list(v: Any) -> list[str]:
    """A media field as swift's loader reads it: null, one ref or a list; {"path": p} is p."""
    refs = [] if v is None else v if isinstance(v, list) else [v]
    return [r["path"] if isinstance(r, dict) else r for r in refs]


class Validator:
    def __init__(self, opts: Options):
        self.opts = opts
        self._headers: dict[str, img.ImageInfo | str] = {}
        self._check = fast_check()
        self._loaded: dict[str, bytes | str | tuple[int, int]] = {}

    # -- images ---------------------------------------------------------------------------
    def resolve(self, ref: str, dataset_dir: Path) -> tuple[str | bytes | None, bool]:
        """What swift's image loader opens for ref: a path, decoded inline bytes, or None (not found), and
        whether the path only exists relative to the dataset file (swift will not look there).

        swift strips the string; a string that exists as a path (as given, then under ROOT_IMAGE_DIR,
        then with ~ expanded) is a file; otherwise a `data:` URI or any string base64 decodes is inline
        image bytes; anything else is a missing file."""
        if ref in self._loaded:
            return self._loaded[ref], False
        ref = ref.strip()
        if len(ref) <= MAX_PATH:
            if os.path.exists(ref):
                return ref, False
            root = self.opts.image_root if self.opts.image_root is not None else os.environ.get("ROOT_IMAGE_DIR")
            path = os.path.abspath(os.path.expanduser(os.path.join(root, ref) if root else ref))
            if os.path.exists(path):
                return path, False
            local = os.path.join(dataset_dir, ref)      # not swift's to find: only for the message
            if os.path.exists(local):
                return local, True
        if ref.startswith("data:"):
            m = re.match(r"data:(.+?);base64,(.+)", ref)        # as swift matches it: up to a line break
            try:
                return (base64.b64decode(m.group(2)) if m else None), False
            except (binascii.Error, ValueError):
                return None, False
        try:
            return base64.b64decode(ref), False
        except (binascii.Error, ValueError):
            return None, False

    def video(self, path: str | bytes | tuple[int, int]) -> VideoInfo | str:
        """A video's header, or why swift could not read it (a loaded row's video is taken as it is)."""
        if not isinstance(path, str):
            return "an inline video: not read"
        try:
            return read_video_header(path)
        except VideoError as e:
            return str(e)

    def header(self, src: str | bytes | tuple[int, int]) -> img.ImageInfo | str:
        """ImageInfo, or the reason the image is unreadable (files cached: images are often shared)."""
        if isinstance(src, tuple):                       # an image its loader has decoded: only the size counts
            return img.ImageInfo("decoded", *src)
        got = self._headers.get(src) if isinstance(src, str) else None
        if got is None:
            if len(self._headers) >= HEADER_CACHE:   # bounded: memory stays flat on huge datasets
                self._headers.clear()
            try:
                got = img.decode(src) if self.opts.deep else img.read_header(src)
                if got.width <= 0 or got.height <= 0:
                    got = f"image has no pixels ({got.width}x{got.height})"
            except (img.ImageError, OSError) as e:
                got = str(e)
            if isinstance(src, str):
                self._headers[src] = got
        return got

    # -- one row --------------------------------------------------------------------------
    def check_row(self, row: Any, dataset_dir: Path, report: Callable[[str, str], None]) -> Sample | None:
        """Structural, role, tag and media checks; a Sample only when the row has no error."""
        errors = 0

        def emit(code: str, message: str) -> None:
            nonlocal errors
            errors += code in ERRORS
            report(code, message)

        if not isinstance(row, dict):
            emit("json", f"expected a JSON object per line, got {type(row).__name__}")
            return None
        row = media_keys(row)
        try:
            if not _plain(row):
                self._check(row)
            row = template_forms(row)
        except Exception:  # noqa: BLE001 - fastjsonschema raises JsonSchemaValueException
            fmt = "unknown"
            try:
                row, fmt = normalize(row)         # the forms swift's loader and template convert themselves
                self._check(row)
            except RowError as e:
                emit("schema", str(e))
                return None
            except Exception:  # noqa: BLE001
                hint = "" if fmt != "unknown" else (" (LLaVA, InternVL meta, CSV or HF rows: python -m data_tools "
                                                    "convert writes them in this form)")
                for msg in explain(row):
                    emit("schema", f"{msg}; fix: each row is {{\"messages\": [{{\"role\", \"content\"}}...], "
                                   f"\"images\": [paths]}}{hint}")
                return None
        if row.get("tools"):
            emit("tools", "the row has tools, and swift's InternVL templates have no agent template: swift fails "
                          "on it (\"Failed to automatically match an agent_template\"); fix: drop `tools`, or "
                          "train with a recipe that sets agent_template (then the token count is not checked)")
        msgs = row["messages"]
        roles = [m["role"] for m in msgs]
        first = 1 if roles[0] == "system" else 0
        # answers in a row that template_forms left apart (different loss flags): swift trains them as pieces
        turns = [i for i in range(first, len(roles)) if not (roles[i] == roles[i - 1] == "assistant" and i > first)]
        for k, i in enumerate(turns):
            want = "user" if k % 2 == 0 else "assistant"
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
            if m["role"] != "system" and not m["content"].strip():     # system "": swift's way to drop the default
                emit("empty", f"messages[{i}] ({m['role']}) has empty content")
        text = "\n".join(m["content"] for m in msgs)
        medias = {"image": _as_list(row.get("images")), "video": _as_list(row.get("videos"))}
        for kind, files in medias.items():
            tags = text.count(f"<{kind}>")
            if tags > len(files):
                emit("extra-tags", f"{tags} <{kind}> tags but {len(files)} {kind}s; swift keeps the extra "
                                   f"tags as literal text; fix: remove {tags - len(files)} tag(s) or add the {kind}s")
            elif 0 < len(files) and tags < len(files):
                emit("missing-tags", f"{len(files)} {kind}s but {tags} <{kind}> tags; swift prepends "
                                     f"{len(files) - tags} tag(s) to the first user message")
        sizes, ok, videos = [], True, []
        for kind, files in medias.items():
            found, checked = self.check_media(kind, files, dataset_dir, emit, videos)
            sizes += found
            ok = ok and checked
        if grounding.has_grounding(row):
            grounding.problems(row, sizes, emit)
        rejected_sizes = None
        if preference.is_preference(row):
            rejected_sizes, checked = self._check_rejected(row, sizes, dataset_dir, emit)
            ok = ok and checked
        return Sample(row, sizes, rejected_sizes, videos=videos) if ok and not errors else None

    def _check_rejected(self, row: dict[str, Any], sizes: list[tuple[int, int]], dataset_dir: Path,
                        emit: Callable[[str, str], None]) -> tuple[list[tuple[int, int]], bool]:
        """A preference row's rejected side: what swift refuses there, and its images (rejected_images, or the
        chosen side's)."""
        for code, message in preference.problems(row):
            emit(code, message)
        files = _as_list(row.get("rejected_images"))
        return self.check_media("image", files, dataset_dir, emit) if files else (sizes, True)

    def check_media(self, kind: str, files: list[str], dataset_dir: Path, emit: Callable[[str, str], None],
                    videos: list | None = None) -> tuple[list[tuple[int, int]], bool]:
        """Each media reference as swift's loader reads it: the image sizes found (videos' headers go to
        `videos`), and False when one is a URL that is not checked offline."""
        sizes, ok = [], True
        for ref in files:
            bare = ref.strip()
            if bare.startswith(("http://", "https://")):
                emit("remote-media", f"{kind} {ref!r} is a URL: not checked offline, fetched by swift "
                                     f"at every epoch")
                ok = False
                continue
            if bare.startswith("http"):
                emit("image-missing", f"{kind} {ref!r} starts with 'http', so swift fetches it as a URL "
                                      f"and fails; fix: write it as ./{bare} or an absolute path")
                continue
            path, dataset_relative = self.resolve(ref, dataset_dir)
            if path is None:
                if bare.startswith("data:"):
                    emit("image-bad", f"{kind} {_short(ref)}: a data: URI swift cannot decode; fix: "
                                      f"data:image/png;base64,<base64 of the file>")
                    continue
                where = "" if os.path.isabs(bare) else (
                    f" (relative paths are resolved against the current directory {os.getcwd()}"
                    f"{', then ROOT_IMAGE_DIR / --image-root' if self.opts.image_root else ''}; fix: absolute "
                    f"paths, ROOT_IMAGE_DIR or --image-root)")
                emit("image-missing", f"{kind} {_short(ref)} not found{where}")
                continue
            if dataset_relative:
                emit("relative-path", f"{kind} {ref!r} exists only relative to the dataset file "
                                      f"({path}); swift resolves against the current directory and "
                                      f"will not find it; fix: absolute paths, or ROOT_IMAGE_DIR={dataset_dir}")
                continue
            if kind == "video":
                found = self.video(path)
                if isinstance(found, str):
                    emit("video-bad", f"video {_short(ref)}: {found}; swift fails on the row at encode (and in "
                                      f"training replaces it with a random other row)")
                elif videos is not None:
                    videos.append(found)
                continue
            info = self.header(path)
            wrapped = bare.startswith("data:") and "\n" in bare      # swift decodes its first line only
            if wrapped and isinstance(info, str):
                emit("image-bad", f"{kind} {_short(ref)}: a data: URI with line breaks in its base64; swift "
                                  f"decodes only its first line, and that is no image ({info}); fix: remove "
                                  f"the line breaks")
                continue
            if wrapped:
                emit("image-damaged", f"{kind} {_short(ref)}: a data: URI with line breaks in its base64; swift "
                                      f"decodes only its first line ({len(path):,} bytes), a cut image unless "
                                      f"that line holds it all (--deep decodes it); fix: remove the line breaks")
            if isinstance(info, str):
                if isinstance(path, str):
                    emit("image-bad", f"image {ref!r}: {info}")
                elif not bare.startswith("data:") and _PATHLIKE.search(bare):
                    emit("image-missing", f"image {_short(ref)} not found (swift then reads the string as "
                                          f"base64, which is no image either); fix: the right path")
                else:
                    emit("image-bad", f"inline image {_short(ref)}: {info}")
                continue
            if info.damage:
                emit("image-damaged", f"image {_short(ref)}: {info.damage}; swift fails on it when it decodes "
                                      f"the pixels (--deep decodes every image to be sure)")
            sizes.append((info.width, info.height))
        return sizes, ok

    def check_loaded(self, row: dict[str, Any], images: list[bytes | str | tuple[int, int]],
                     report: Callable[[str, str], None]) -> Sample | None:
        """check_row for a row a dataset loader has built (a hub dataset through swift): its images are bytes,
        paths or the (width, height) of decoded images, not the references a JSONL row holds."""
        refs = [f"<loaded image {i}>" for i in range(len(images))]
        self._loaded = dict(zip(refs, images))
        try:
            return self.check_row({**row, "images": refs}, Path.cwd(), report)
        finally:
            self._loaded = {}

    # -- token length ---------------------------------------------------------------------
    def check_length(self, sample: Sample, emit: Callable[[str, str], None]) -> int | None:
        """The chosen side's tokens; a preference row's rejected side is checked against max_length too."""
        if self.opts.counter is None:
            return None
        frames = {v.frames for v in sample.videos}
        if len(frames) > 1 and self.opts.counter.tiling.hf:
            emit("video-bad", f"videos of {' and '.join(map(str, sorted(frames)))} frames in one row: swift's -HF "
                              f"template stacks every frame of a row's videos and fails on different counts; fix: "
                              f"one video per row, or videos of equal length")
            return None
        messages = sample.row["messages"]
        if sample.row.get("objects") is not None:          # the tags as the template writes them
            messages = grounding.render(messages, grounding.objects_of(sample.row), sample.image_sizes)
        total, sample.tokens = self._side_length(messages, sample.image_sizes, "", emit, sample.videos)
        rejected = preference.rejected_messages(sample.row) if sample.rejected_sizes is not None else None
        if rejected is not None:             # swift encodes each side on its own; either too long drops the pair
            sample.rejected_tokens, _ = self._side_length(rejected, sample.rejected_sizes, "rejected side: ", emit)
        return total

    def _side_length(self, messages: list[dict[str, Any]], image_sizes: list[tuple[int, int]], side: str,
                     emit: Callable[[str, str], None], videos: list[VideoInfo] = ()) -> tuple[int, Breakdown | None]:
        """The side's total tokens (and their split, when opts.breakdown), with too-long reported."""
        counter, limit = self.opts.counter, self.opts.max_length
        b = counter.count(messages, image_sizes, self.opts.max_num, videos) if self.opts.breakdown else None
        total = b.total if b is not None else counter.total(messages, image_sizes, self.opts.max_num, videos)
        if limit is not None and total > limit:
            b = b or counter.count(messages, image_sizes, self.opts.max_num, videos)
            tiles = "+".join(map(str, b.tiles)) or "0"
            fix = f"max_length={b.total}"
            current = self.opts.max_num or counter.tiling.max_num
            for m in range(current - 1, 0, -1) if b.tiles else ():
                smaller = counter.total(messages, image_sizes, m)
                if smaller <= limit:
                    fix += f", or internvl.max_num={m} (-> {smaller} tokens)"
                    break
            kind = "" if counter.exact else " (estimated: model tokenizer not found locally)"
            emit("too-long", f"{side}{b.total} tokens > max_length {limit}{kind}: text {b.text} + template "
                             f"{b.template} + image {b.image} ({tiles} tiles x {counter.tiling.tokens_per_tile}); "
                             f"swift would drop this sample silently; fix: {fix}")
        return total, b if self.opts.breakdown else None

    # -- a file ---------------------------------------------------------------------------
    def lines(self, path: Path) -> Iterator[tuple[int, bytes]]:
        """(line number, raw row) of a JSONL file, or of each element of a `.json` file holding an array
        (swift's loader reads both), a UTF-8 BOM dropped."""
        with open(path, "rb") as f:
            head = f.read(2)
            if head == b"\x1f\x8b":
                raise FileProblem("gzip-compressed; swift reads plain JSON lines; fix: gunzip it first")
            if _array_file(path):
                yield from _array_rows(path.read_bytes(), path)
                return
            f.seek(0)
            for n, raw in enumerate(f, 1):
                yield n, raw[3:] if n == 1 and raw.startswith(b"\xef\xbb\xbf") else raw

    def _parse(self, stripped: bytes, emit: Callable[[str, str], None]) -> tuple[list[Any], str | None]:
        """The JSON values of one line as swift's loader reads them (the Arrow JSON reader takes several
        objects on a line, and NaN), and why the whole file fails to load because of this line, if it does."""
        try:
            text = stripped.decode("utf-8")
        except UnicodeDecodeError as e:
            emit("utf8", f"invalid UTF-8 at byte {e.start}; fix: re-encode the file as UTF-8")
            return [], "invalid UTF-8"
        try:
            values = [_loads(stripped)]
        except _JSONError as e:
            values = arrow_json.values(text)
            if values is None:
                emit("json", f"invalid JSON: {e}")
                return [], "not JSON"
            arrow = arrow_json.refused(values)
            if arrow:
                emit("json", f"{arrow}: the Arrow JSON reader under swift's loader refuses it")
                return [], arrow
        others = [v for v in values if not isinstance(v, dict)]
        if others:
            kind = {list: "array", str: "string", type(None): "null"}.get(type(others[0]), type(others[0]).__name__)
            emit("json", f"a JSON {kind}, not an object: swift's row preprocessor fails on it")
            return [], f"a JSON {kind}, not an object"
        return values, None

    def _objects(self, path: Path) -> Iterator[tuple[int, dict]]:
        """(line, object) of every row of a file that loads line by line (a second, rare pass)."""
        for n, raw in self.lines(path):
            stripped = raw.strip()
            if stripped:
                for value in self._parse(stripped, lambda code, message: None)[0]:
                    yield n, value

    def _row(self, row: Any, key: int, n: int, seen: dict[int, int], dataset_dir: Path,
             emit: Callable[[str, str], None], report: Report,
             on_sample: Callable[[Sample], None] | None) -> Sample | None:
        """One JSON object: duplicates, the row checks and the token length."""
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
        return sample

    def validate_file(self, path: Path, report: Report, sink: Callable[[Issue], None],
                      on_sample: Callable[[Sample], None] | None = None,
                      on_row: Callable[[int, list[str], Sample | None], None] | None = None) -> FileVerdict:
        """Check every line of path; on_sample sees each row that passed the row checks, on_row every
        non-blank row with its line, the codes it got and its Sample (None when the row checks failed).
        What swift's loader does with the file as a whole comes at the end (_whole_file)."""
        shown = str(path)
        codes: list[str] = []
        seen: dict[int, int] = {}
        verdict, facts = FileVerdict(), _FileFacts()

        def file_problem(message: str) -> FileVerdict:
            report.counts["file"] += 1
            sink(Issue(shown, 0, "file", message))
            verdict.loads = False
            return verdict

        problem = _not_a_file(path)
        if problem:
            return file_problem(problem)
        dataset_dir = path.resolve().parent
        rows_before = report.samples
        try:
            with open(path, "rb") as f:
                if f.read(3) == b"\xef\xbb\xbf":
                    facts.unreadable.append(1)
            for n, raw in self.lines(path):
                codes.clear()

                def emit(code: str, message: str, _n: int = n) -> None:
                    report.counts[code] += 1
                    codes.append(code)
                    sink(Issue(shown, _n, code, message))

                stripped = raw.strip()
                if not stripped:
                    emit("blank", "blank line (skipped)")
                    facts.unreadable.append(n)
                    continue
                values, fatal = self._parse(stripped, emit)
                facts.line(n, stripped, values, fatal)
                if not values:
                    report.samples += 1
                    if on_row is not None:
                        on_row(n, list(codes), None)
                for i, row in enumerate(values):
                    report.samples += 1
                    sample = self._row(row, hash((stripped, i)), n, seen, dataset_dir, emit, report, on_sample)
                    facts.row((n, i), row)
                    if on_row is not None:
                        on_row(n, list(codes), sample)
                    codes.clear()
        except FileProblem as e:
            return file_problem(str(e))
        except OSError as e:
            return file_problem(f"cannot read: {e.strerror or e}")
        def late(n: int, code: str, message: str) -> None:
            report.counts[code] += 1
            sink(Issue(shown, n, code, message))

        fatal = self._whole_file(path, facts, verdict, late)
        if fatal is not None:
            n, why = fatal
            return file_problem(f"line {n} is {why}: swift's loader fails on the whole file, so none of its "
                                f"{report.samples - rows_before} row(s) would train; fix or remove that line")
        if report.samples == rows_before:
            return file_problem("no samples; swift's loader stops on an empty dataset; fix: drop the file from "
                                "the recipe or fill it")
        return verdict

    def _whole_file(self, path: Path, facts: "_FileFacts", verdict: FileVerdict,
                    late: Callable[[int, str, str], None]) -> tuple[int, str] | None:
        """What swift's loader does with the file as a whole: the rows it drops or reads without their media
        (one format and one set of columns per file), and why it fails on the whole file, if it does."""
        kind = file_kind(facts.columns)
        for (n, i), own in facts.kinds:
            if own != kind and (kind is None or kind in MESSAGES_COLUMNS):    # it has no `kind` key of its own
                verdict.add((n, i), "mixed-formats", dropped=True)
                late(n, "mixed-formats", f"a {own} row in a file swift reads as {kind or 'no'} rows (its rows' keys "
                                         f"decide one format per file): swift drops it silently; fix: convert it "
                                         f"(python -m data_tools convert) or move it to a file of its own")
        for (n, i), short in facts.singular:
            full = dict(SINGULAR_MEDIA)[short]
            if full in facts.columns:
                verdict.add((n, i), "mixed-formats", dropped=False)
                late(n, "mixed-formats", f"its `{short}` is ignored: other rows of this file have `{full}`, and "
                                         f"swift then drops the `{short}` column (this row would train without "
                                         f"it); fix: write `{full}` in every row")
        fatal = facts.fatal
        written = next((n for n, own, key in facts.mixed_images                 # rows swift keeps, then writes
                        if own == kind and (key == "images" or "images" not in facts.columns)), None)
        if written is not None and (fatal is None or written < fatal[0]):
            fatal = (written, "a row whose images mix path strings and {\"path\": ...} objects, which swift's row "
                              "preprocessor cannot write as one Arrow column")
        # a JSON array file is re-encoded whole by datasets: the line-level rules of the reader do not apply
        if fatal is None and (facts.twice or facts.unreadable) and not _array_file(path):
            fatal = arrow_json.file_failure(path, list(self._objects(path)), facts.unreadable, facts.twice)
        return fatal


@dataclass
class _FileFacts:
    """What one pass over a file gathers for the checks that need all of it (see Validator._whole_file)."""
    fatal: tuple[int, str] | None = None               # the first line that fails the whole file on its own
    unreadable: list[int] = field(default_factory=list)  # lines ujson cannot read: several objects, blank, BOM
    twice: list[tuple[int, str]] = field(default_factory=list)        # (line, key) of a key given twice
    mixed_images: list[tuple[int, str, str]] = field(default_factory=list)  # (line, format, key): strings+objects
    kinds: list[tuple[tuple[int, int], str]] = field(default_factory=list)  # ((line, object), its own format)
    singular: list[tuple[tuple[int, int], str]] = field(default_factory=list)  # media named only by `image`...
    columns: set[str] = field(default_factory=set)     # every key of every row: swift's loader sees their union

    def line(self, n: int, stripped: bytes, values: list[Any], fatal: str | None) -> None:
        if fatal and self.fatal is None:
            self.fatal = (n, fatal)
        if len(values) > 1:
            self.unreadable.append(n)
        twice = arrow_json.key_twice(stripped.decode()) if values else None
        if twice:
            self.twice.append((n, twice))

    def row(self, where: tuple[int, int], row: dict[str, Any]) -> None:
        self.kinds.append((where, row_kind(row)))
        if "image" in row or "video" in row or "audio" in row:
            self.singular += [(where, short) for short, full in SINGULAR_MEDIA if short in row and full not in row]
        self.columns.update(row)
        key = _mixed_image_list(row)
        if key and _preprocessor_keeps(row):
            self.mixed_images.append((where[0], self.kinds[-1][1], key))


SINGULAR_MEDIA = (("image", "images"), ("video", "videos"), ("audio", "audios"))
MESSAGES_COLUMNS = ("messages", "conversations", "conversation")


def row_kind(row: dict[str, Any]) -> str:
    """The row's own format as swift's loader tells formats apart: its messages key, alpaca, query/response."""
    return next((c for c in MESSAGES_COLUMNS if c in row), None) or (
        "alpaca" if {"instruction", "input"} <= set(row) else "query/response")


def file_kind(columns: set[str]) -> str | None:
    """The one format swift reads a file's rows in, from the union of their keys: a messages key when any row
    has one (`messages` first; both conversation spellings and no `messages`: none, swift keeps no row),
    else alpaca or query/response (None means no row is kept)."""
    present = [c for c in MESSAGES_COLUMNS if c in columns]
    if present:
        return "messages" if "messages" in present else present[0] if len(present) == 1 else None
    return "alpaca" if {"instruction", "input"} <= columns else "query/response"


def _array_file(path: Path) -> bool:
    """A `.json` file holding one JSON array (of rows), not JSON lines."""
    if path.suffix != ".json":
        return False
    with open(path, "rb") as f:
        return f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[")


def _mixed_image_list(row: dict[str, Any]) -> str | None:
    """The key (`images`, else `image`, which swift's loader renames) of an images list holding both path
    strings and objects, or None."""
    key = "images" if "images" in row else "image"
    images = row.get(key)
    if not isinstance(images, list) or len(images) < 2:
        return None
    kinds = {type(x) for x in images}
    return key if str in kinds and dict in kinds else None


def _preprocessor_keeps(row: dict[str, Any]) -> bool:
    """Whether swift's row preprocessor keeps the row (and so writes it), whatever its template then says."""
    try:
        normalize(row)
    except (RowError, TypeError, AttributeError, KeyError):
        return False
    return True


class FileProblem(Exception):
    """The file as a whole cannot be read as a dataset (message says why and the fix)."""


def _not_a_file(path: Path) -> str | None:
    """Why path is not a dataset file swift could read, in one line, or None."""
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == 40:          # ELOOP
            return "a symlink loop; fix: point the link at the real file"
        if isinstance(e, FileNotFoundError):
            return "not found" + (" (a dangling symlink)" if os.path.islink(path) else "")
        return f"cannot read: {e.strerror or e}"
    if stat.S_ISDIR(st.st_mode):
        return "a directory; fix: name the .jsonl file(s) inside it"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (a FIFO, socket or device); swift reads it twice: fix: write it to a file first"
    if not os.access(path, os.R_OK):
        return "permission denied; fix: chmod +r it"
    return None


def _array_rows(data: bytes, path: Path) -> Iterator[tuple[int, bytes]]:
    """Elements of a JSON array file, each as raw JSON with the line it starts on."""
    import json
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FileProblem(f"invalid UTF-8 at byte {e.start}; fix: re-encode the file as UTF-8") from None
    dec = json.JSONDecoder()
    pos = text.index("[") + 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            raise FileProblem("the JSON array is not closed; fix: end it with ]")
        if text[pos] == "]":
            return
        line = text.count("\n", 0, pos) + 1
        try:
            _, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise FileProblem(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
        yield line, text[pos:end].encode("utf-8")
        pos = end
