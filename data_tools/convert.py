"""Convert the formats people have into swift's messages/images JSONL.

llava / sharegpt: `conversations` of {from, value}, `image` a path or a list of paths
internvl: InternVL's meta JSON ({name: {root, annotation}}) or one of its annotation JSONL files
alpaca: instruction / input / output (+ optional system, image(s))
csv / tsv: an image column, an answer column and a question column or one --prompt for every row
hf: a local Hugging Face dataset directory (parquet or save_to_disk arrow files) or a parquet file,
    with the same columns; embedded images are written out as files named by content hash
coco / refcoco / odvg: detection and referring data as grounding rows (convert_boxes.py)

Nothing is dropped silently: every input field that does not reach the output is reported per field,
with a count and an example line. The input is never modified; the output is written to a temp file
and renamed at the end, so an interrupted or empty conversion leaves no output.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from .context import UsageError

ROLE_MAP = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system",
            "bot": "assistant", "model": "assistant"}


class Skip(Exception):
    """This input row cannot be converted (the message says why); the conversion goes on."""


_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]+")


class Paths:
    """Image paths as written: absolute, or relative to --relative-to."""

    def __init__(self, root: Path, relative_to: Path | None):
        self.root, self.relative_to = root.resolve(), relative_to.resolve() if relative_to else None

    def __call__(self, ref: str, root: Path | None = None) -> str:
        if ref.startswith(("http://", "https://", "data:")):
            return ref
        if len(ref) > 256 and _BASE64.fullmatch(ref):
            return ref                                  # inline base64 image bytes, as swift reads them
        p = Path(ref).expanduser()
        p = p if p.is_absolute() else Path(root or self.root).resolve() / p
        p = Path(os.path.normpath(p))
        if not os.path.exists(p):                       # (False, not an error, for a name too long)
            raise Skip(f"image {ref[:80]!r} not found (looked for {str(p)[:200]})")
        return os.path.relpath(p, self.relative_to) if self.relative_to else str(p)


def _as_list(v: Any) -> list[str]:
    return [] if v in (None, "") else [v] if isinstance(v, str) else list(v)


def place_tags(messages: list[dict[str, str]], n_images: int) -> None:
    """Ensure exactly one <image> tag per image: missing ones go, one per line, before the first user text."""
    text = "\n".join(m["content"] for m in messages)
    have = text.count("<image>")
    if have > n_images:
        raise Skip(f"{have} <image> tags but {n_images} image(s)")
    if have < n_images:
        first = next(m for m in messages if m["role"] == "user")
        first["content"] = "<image>\n" * (n_images - have) + first["content"].lstrip("\n")


# Fields each converter carries into the output; anything else in a row, or in a turn, is reported as dropped.
CONVERSATION_FIELDS = {"conversations", "image", "images", "video", "videos", "system"}
TURN_FIELDS = {"from", "value", "role", "content", "loss", "loss_scale"}   # loss/loss_scale: swift keeps them
ALPACA_FIELDS = {"instruction", "input", "output", "system", "history", "image", "images"}


def from_conversations(row: dict[str, Any], paths: Paths, root: Path | None = None) -> dict[str, Any]:
    conv = row.get("conversations")
    if not isinstance(conv, list) or not conv:
        raise Skip("no 'conversations' list")
    messages = []
    if row.get("system") and str(conv[0].get("from", conv[0].get("role", ""))).lower() != "system":
        messages.append({"role": "system", "content": str(row["system"])})
    for turn in conv:
        role = ROLE_MAP.get(str(turn.get("from", turn.get("role", ""))).lower())
        if role is None:
            raise Skip(f"unknown speaker {turn.get('from')!r} (known: {', '.join(ROLE_MAP)})")
        message = {"role": role, "content": _text(turn.get("value", turn.get("content", "")))}
        message.update({k: turn[k] for k in ("loss", "loss_scale") if k in turn})   # a turn not trained on stays so
        messages.append(message)
    return _finish(messages, _media(row, "images", paths, root), _media(row, "videos", paths, root))


def _text(value: Any) -> str:
    """A turn's text; a list of answers gives its first, as swift's preprocessors take it (reported)."""
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value)


def _media(row: dict[str, Any], key: str, paths: Paths, root: Path | None = None) -> list[str]:
    """`images` and `image` (or videos/video) both carried, `images` first: swift reads the plural."""
    return [paths(p, root) for p in _as_list(row.get(key)) + _as_list(row.get(key[:-1]))]


def from_alpaca(row: dict[str, Any], paths: Paths) -> dict[str, Any]:
    if "instruction" not in row or "output" not in row:
        raise Skip("needs 'instruction' and 'output'")
    user = str(row["instruction"]) + (f"\n{row['input']}" if row.get("input") else "")
    messages = ([{"role": "system", "content": str(row["system"])}] if row.get("system") else [])
    for pair in row.get("history") or []:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise Skip(f"history entry {pair!r} is not a [question, answer] pair")
        messages += [{"role": "user", "content": str(pair[0])}, {"role": "assistant", "content": str(pair[1])}]
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": str(row["output"])}]
    return _finish(messages, _media(row, "images", paths))


PAIR_QUESTIONS = ("question", "prompt", "query", "instruction")
PAIR_FIELDS = {*PAIR_QUESTIONS, "chosen", "rejected", "system", "image", "images"}


def from_pairs(row: dict[str, Any], paths: Paths, root: Path | None = None) -> dict[str, Any]:
    """A preference pair {question, chosen, rejected, image(s)} (MMPR's annotation rows, RLAIF-V's, and the
    plain chosen/rejected form) as swift's preference row: messages ending on the chosen answer, the other
    as rejected_response."""
    key = next((k for k in PAIR_QUESTIONS if k in row), None)
    if key is None or "chosen" not in row or "rejected" not in row:
        raise Skip(f"needs a question ({'/'.join(PAIR_QUESTIONS)}), 'chosen' and 'rejected'")
    chosen, rejected = _text(row["chosen"]), _text(row["rejected"])
    if chosen.strip() == rejected.strip():
        raise Skip("chosen and rejected are the same answer (swift's loader deletes such a row)")
    if not rejected.strip():
        raise Skip("a turn has empty text")
    messages = ([{"role": "system", "content": str(row["system"])}] if row.get("system") else [])
    messages += [{"role": "user", "content": _text(row[key])}, {"role": "assistant", "content": chosen}]
    return {**_finish(messages, _media(row, "images", paths, root)), "rejected_response": rejected}


def _finish(messages: list[dict[str, str]], images: list[str], videos: list[str] = ()) -> dict[str, Any]:
    if not any(m["role"] == "user" for m in messages) or messages[-1]["role"] != "assistant":
        raise Skip("needs a user turn and must end with the assistant's answer")
    if any(not m["content"].strip() for m in messages):
        raise Skip("a turn has empty text")
    place_tags(messages, len(images))
    out: dict[str, Any] = {"messages": messages}
    if images:
        out["images"] = images
    if videos:
        out["videos"] = list(videos)
    return out


def _ocr_row(image: str, rec: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """One image, its question (a column, or the fixed --prompt) and its answer."""
    text = rec.get(args.text_column)
    if text is None or not str(text).strip():
        raise Skip("empty answer")
    question = rec.get(args.question_column) if args.question_column else args.prompt
    if question is None or not str(question).strip():
        raise Skip("empty question")
    question = str(question)
    row = {"messages": [{"role": "user", "content": question if "<image>" in question else f"<image>{question}"},
                        {"role": "assistant", "content": str(text)}], "images": [image]}
    rejected_column = getattr(args, "rejected_column", None)
    if rejected_column:                      # a preference pair (RLAIF-V's parquet: chosen / rejected columns)
        rejected = rec.get(rejected_column)
        if rejected is None or not str(rejected).strip():
            raise Skip("empty rejected answer")
        if str(rejected).strip() == str(text).strip():
            raise Skip("chosen and rejected are the same answer (swift's loader deletes such a row)")
        row["rejected_response"] = str(rejected)
    return row


def _table_fields(args: argparse.Namespace) -> set[str]:
    return ({args.image_column, args.text_column} | ({args.question_column} if args.question_column else set())
            | ({args.rejected_column} if getattr(args, "rejected_column", None) else set()))


# ------------------------------------------------------------------------------ readers

def _json_records(path: Path) -> Iterator[tuple[int, Any]]:
    """A JSON array (whole file), with row numbers, or JSONL (streamed), with line numbers."""
    with open(path, "rb") as f:
        first = f.read(1)
        while first.isspace():
            first = f.read(1)
    if first == b"[":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise UsageError(f"{path}: invalid JSON: {e}") from None
        yield from ((f"row {i}", r) for i, r in enumerate(data, 1))     # a row of the array, not a line
        return
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if raw.strip():
                try:
                    yield n, json.loads(raw)
                except ValueError as e:
                    yield n, Skip(f"invalid JSON: {e}")


def _internvl_sources(path: Path, image_root: Path | None, meta_relative: bool
                      ) -> Iterator[tuple[Path, Path, dict[str, Any]]]:
    """(annotation file, image root, meta entry) of a meta JSON, or the file itself if it is annotation
    JSONL. InternVL resolves a meta entry's relative `root` and `annotation` against the directory it is
    launched from; --meta-relative takes the meta file's folder instead."""
    if path.suffix == ".json":
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise UsageError(f"{path}: invalid JSON: {e}") from None
        if isinstance(meta, dict) and all(isinstance(v, dict) and "annotation" in v for v in meta.values()):
            base = path.parent.resolve() if meta_relative else Path.cwd()
            for name, entry in meta.items():
                ann = Path(entry["annotation"]).expanduser()
                ann = ann if ann.is_absolute() else base / ann
                root = Path(entry["root"]).expanduser() if entry.get("root") else (image_root or ann.parent)
                root = root if root.is_absolute() else base / root
                yield ann, root.resolve(), entry
            return
    yield path, (image_root or path.parent).resolve(), {}


def _repeats(entry: dict[str, Any], where: str, notes: list[str]) -> int:
    """InternVL's per-dataset repeat_time: whole repeats are written out; a fraction is reported (swift
    samples with `PATH#N`). max_dynamic_patch has no per-dataset form in swift: reported."""
    repeat = entry.get("repeat_time", 1)
    try:
        repeat = float(repeat)
    except (TypeError, ValueError):
        notes.append(f"{where}: repeat_time {repeat!r} is not a number: rows written once")
        return 1
    whole = max(1, int(repeat))
    if repeat != whole:
        notes.append(f"{where}: repeat_time {repeat:g} written as {whole}x; for the fraction sample with swift's "
                     f"dataset syntax (OUTPUT#N rows)")
    if "max_dynamic_patch" in entry:
        notes.append(f"{where}: max_dynamic_patch {entry['max_dynamic_patch']} not carried: swift's tile limit is "
                     f"one for the run (recipe internvl.max_num)")
    return whole


def _hf_rows(path: Path, args: argparse.Namespace) -> Iterator[tuple[int, Any, dict[str, Any]]]:
    """Rows of parquet files (streamed in batches) or a save_to_disk dataset directory."""
    images_dir = args.images_dir or args.output.with_name(args.output.stem + "_images")
    parquet = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    if parquet:
        import pyarrow.parquet as pq
        n = 0
        for file in parquet:
            for batch in pq.ParquetFile(file).iter_batches(batch_size=256):
                for rec in batch.to_pylist():
                    n += 1
                    yield n, _hf_row(rec, args, images_dir), rec
        return
    if not (path / "dataset_info.json").is_file() and not list(path.glob("*.arrow")):
        raise UsageError(f"{path}: no parquet files and not a save_to_disk dataset directory")
    from datasets import load_from_disk
    ds = load_from_disk(str(path))
    if hasattr(ds, "keys"):               # a DatasetDict: take its first split
        ds = ds[next(iter(ds.keys()))]
    for n, rec in enumerate(ds.with_format("python") if hasattr(ds, "with_format") else ds, 1):
        yield n, _hf_row(rec, args, images_dir), rec


def _hf_row(rec: dict[str, Any], args: argparse.Namespace, images_dir: Path) -> Any:
    missing = _table_fields(args) - set(rec)
    if missing:
        return Skip(f"no column {sorted(missing)[0]!r} (columns: {', '.join(rec)})")
    image = rec[args.image_column]
    data = None
    if isinstance(image, dict):
        data = image.get("bytes")
        if data is None and image.get("path"):
            return _ocr_row(str(Path(image["path"]).resolve()), rec, args)
    elif isinstance(image, (bytes, bytearray)):
        data = bytes(image)
    elif hasattr(image, "save"):           # a decoded PIL image (load_from_disk with Image feature)
        import io
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        data = buf.getvalue()
    if not data:
        return Skip(f"column {args.image_column!r} holds no image")
    from .images import ImageError, read_header
    digest = hashlib.sha256(data).hexdigest()[:32]
    fmt = {b"\x89PNG": "png", b"\xff\xd8\xff": "jpg", b"GIF8": "gif", b"RIFF": "webp", b"BM": "bmp"}
    ext = next((e for sig, e in fmt.items() if data.startswith(sig)), "img")
    target = images_dir / f"{digest}.{ext}"
    if not target.exists():
        from .fileio import atomic_write_bytes
        atomic_write_bytes(target, data)
    try:
        read_header(str(target))
    except (ImageError, OSError) as e:
        return Skip(f"embedded image unreadable: {e}")
    return _guard(_ocr_row, str(target.resolve()), rec, args)


def _records(args: argparse.Namespace, paths: Paths, notes: list[str]
             ) -> Iterator[tuple[str, int, Any, set[str]]]:
    """(where, line, converted row or Skip, the input fields that did not reach the output)."""
    src: Path = args.input
    if args.fmt in ("llava", "sharegpt", "alpaca", "pairs"):
        fn, fields = {"alpaca": (from_alpaca, ALPACA_FIELDS), "pairs": (from_pairs, PAIR_FIELDS)}.get(
            args.fmt, (from_conversations, CONVERSATION_FIELDS))
        for n, rec in _json_records(src):
            yield str(src), n, rec if isinstance(rec, Skip) else _guard(fn, rec, paths), _dropped(rec, fields)
    elif args.fmt in ("internvl", "mmpr"):           # MMPR: InternVL's meta JSON over preference pairs
        fn, fields = (from_pairs, PAIR_FIELDS) if args.fmt == "mmpr" else (from_conversations, CONVERSATION_FIELDS)
        for ann, root, entry in _internvl_sources(src, args.image_root, args.meta_relative):
            if not ann.is_file():
                hint = "" if args.meta_relative or not entry else (
                    f"; InternVL resolves it against the current directory {Path.cwd()}: run from there, or "
                    f"--meta-relative for the meta file's folder")
                yield str(src), 0, Skip(f"annotation file {ann} not found{hint}"), set()
                continue
            repeat = _repeats(entry, f"{src}: {ann.name}", notes)
            for n, rec in _json_records(ann):
                row = rec if isinstance(rec, Skip) else _guard(fn, rec, paths, root)
                for _ in range(repeat if not isinstance(row, Skip) else 1):
                    yield str(ann), n, row, _dropped(rec, fields)
    elif args.fmt in ("csv", "tsv"):
        with open(src, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, delimiter="," if args.fmt == "csv" else "\t")
            missing = _table_fields(args) - set(reader.fieldnames or [])
            if missing:
                raise UsageError(f"{src}: no column(s) {', '.join(sorted(missing))}; columns: "
                                 f"{', '.join(reader.fieldnames or [])} (use --image-column/--question-column/"
                                 f"--text-column)")
            for row in reader:
                n = reader.line_num
                yield str(src), n, _guard(lambda r: _ocr_row(paths(r[args.image_column]), r, args), row), \
                    _dropped(row, _table_fields(args))
    elif args.fmt in ("coco", "refcoco", "odvg"):
        from .convert_boxes import READERS
        yield from READERS[args.fmt](src, paths, args, Skip)
    else:
        for n, rec, raw in _hf_rows(src, args):
            yield str(src), n, rec, _dropped(raw, _table_fields(args))


def _at(where: str, n: int | str) -> str:
    """`file:LINE` for a line, `file, row N` for a row of a JSON array."""
    return f"{where}:{n}" if isinstance(n, int) else f"{where}, {n}"


def _dropped(rec: Any, carried: set[str]) -> set[str]:
    """Fields of an input row the output does not carry (non-empty ones only)."""
    if not isinstance(rec, dict):
        return set()
    lost = {k for k, v in rec.items() if k not in carried and v not in (None, "", [], {})}
    for turn in rec.get("conversations") or [] if "conversations" in carried else []:
        if isinstance(turn, dict):
            lost |= {f"conversations[].{k}" for k, v in turn.items() if k not in TURN_FIELDS and v not in (None, "")}
            if isinstance(turn.get("value", turn.get("content")), list):
                lost.add("conversations[].value beyond a list's first item")
    return lost


def _guard(fn, *a) -> Any:
    try:
        return fn(*a)
    except Skip as e:
        return e
    except (TypeError, AttributeError, ValueError) as e:
        return Skip(f"unexpected row shape: {e}")


def run(args: argparse.Namespace) -> int:
    src: Path = args.input
    if not src.exists():
        raise UsageError(f"{src}: no such file or directory")
    if args.fmt in ("csv", "tsv", "hf") and not args.question_column and args.prompt is None:
        raise UsageError(f"--from {args.fmt}: name the question, per row (--question-column COL) or one for every "
                         f"row (--prompt TEXT, e.g. the LaTeX-OCR guide's \"Using LaTeX to perform OCR on the "
                         f"image.\")")
    out: Path = args.output
    if out.resolve() == src.resolve():
        raise UsageError("the output would overwrite the input; choose another -o")
    paths = Paths(args.image_root or (src if src.is_dir() else src.parent), args.relative_to)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    converted, skipped, examples = 0, Counter(), {}
    dropped, dropped_at = Counter(), {}
    notes: list[str] = []
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for where, n, rec, lost in _records(args, paths, notes):
                if isinstance(rec, Skip):
                    reason = str(rec)
                    key = reason.split(" (")[0].split("'")[0]
                    skipped[key] += 1
                    examples.setdefault(key, f"{_at(where, n)}: {reason}")
                    continue
                for field in lost:
                    dropped[field] += 1
                    dropped_at.setdefault(field, _at(where, n))
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                converted += 1
            f.flush()
            os.fsync(f.fileno())
        if converted == 0:
            raise _Nothing
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except _Nothing:
        Path(tmp).unlink(missing_ok=True)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    total_skipped = sum(skipped.values())
    print(f"converted {converted} row(s){f' to {out}' if converted else ''}; skipped {total_skipped}")
    for key, count in skipped.most_common():
        print(f"  skipped {count:6}  e.g. {examples[key]}")
    for field, count in dropped.most_common():
        print(f"  dropped field {field!r} from {count} row(s) (not part of swift's format), e.g. {dropped_at[field]}")
    for note in notes:
        print(f"  note: {note}")
    if converted == 0:
        print(f"error: nothing converted; {out} not written", file=sys.stderr)
        return 1
    return 0


class _Nothing(Exception):
    """No row converted: the output is not written."""
