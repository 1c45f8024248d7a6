"""Convert the formats people have into swift's messages/images JSONL.

llava / sharegpt: `conversations` of {from, value}, `image` a path or a list of paths
internvl: InternVL's meta JSON ({name: {root, annotation}}) or one of its annotation JSONL files
alpaca: instruction / input / output (+ optional system, image(s))
csv / tsv: an image column and a text column, with one prompt for every row (e.g. LaTeX OCR)
hf: a local Hugging Face dataset directory (parquet or save_to_disk arrow files) or a parquet file,
    with an image column; embedded images are written out as files named by content hash

The input is never modified; the output is written to a temp file and renamed at the end, so an
interrupted conversion leaves no partial output.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
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


class Paths:
    """Image paths as written: absolute, or relative to --relative-to."""

    def __init__(self, root: Path, relative_to: Path | None):
        self.root, self.relative_to = root.resolve(), relative_to.resolve() if relative_to else None

    def __call__(self, ref: str, root: Path | None = None) -> str:
        if ref.startswith(("http://", "https://", "data:")):
            return ref
        p = Path(ref).expanduser()
        p = p if p.is_absolute() else (root or self.root) / p
        p = Path(os.path.normpath(p))
        if not p.exists():
            raise Skip(f"image {ref!r} not found (looked for {p})")
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


def from_conversations(row: dict[str, Any], paths: Paths, root: Path | None = None) -> dict[str, Any]:
    conv = row.get("conversations")
    if not isinstance(conv, list) or not conv:
        raise Skip("no 'conversations' list")
    messages = []
    for turn in conv:
        role = ROLE_MAP.get(str(turn.get("from", turn.get("role", ""))).lower())
        if role is None:
            raise Skip(f"unknown speaker {turn.get('from')!r} (known: {', '.join(ROLE_MAP)})")
        messages.append({"role": role, "content": str(turn.get("value", turn.get("content", "")))})
    images = [paths(p, root) for p in _as_list(row.get("image", row.get("images")))]
    return _finish(messages, images)


def from_alpaca(row: dict[str, Any], paths: Paths) -> dict[str, Any]:
    if "instruction" not in row or "output" not in row:
        raise Skip("needs 'instruction' and 'output'")
    user = str(row["instruction"]) + (f"\n{row['input']}" if row.get("input") else "")
    messages = ([{"role": "system", "content": str(row["system"])}] if row.get("system") else [])
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": str(row["output"])}]
    images = [paths(p) for p in _as_list(row.get("images", row.get("image")))]
    return _finish(messages, images)


def _finish(messages: list[dict[str, str]], images: list[str]) -> dict[str, Any]:
    if not any(m["role"] == "user" for m in messages) or messages[-1]["role"] != "assistant":
        raise Skip("needs a user turn and must end with the assistant's answer")
    if any(not m["content"].strip() for m in messages):
        raise Skip("a turn has empty text")
    place_tags(messages, len(images))
    out: dict[str, Any] = {"messages": messages}
    if images:
        out["images"] = images
    return out


def _ocr_row(image: str, text: Any, prompt: str) -> dict[str, Any]:
    if text is None or not str(text).strip():
        raise Skip("empty text")
    return {"messages": [{"role": "user", "content": f"<image>{prompt}"},
                         {"role": "assistant", "content": str(text)}], "images": [image]}


# ------------------------------------------------------------------------------ readers

def _json_records(path: Path) -> Iterator[tuple[int, Any]]:
    """A JSON array (whole file) or JSONL (streamed), with line numbers for JSONL."""
    with open(path, "rb") as f:
        first = f.read(1)
        while first.isspace():
            first = f.read(1)
    if first == b"[":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise UsageError(f"{path}: invalid JSON: {e}") from None
        yield from ((i, r) for i, r in enumerate(data, 1))
        return
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if raw.strip():
                try:
                    yield n, json.loads(raw)
                except ValueError as e:
                    yield n, Skip(f"invalid JSON: {e}")


def _internvl_sources(path: Path, image_root: Path | None) -> Iterator[tuple[Path, Path]]:
    """(annotation file, image root) pairs of a meta JSON, or the file itself if it is annotation JSONL."""
    if path.suffix == ".json":
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise UsageError(f"{path}: invalid JSON: {e}") from None
        if isinstance(meta, dict) and all(isinstance(v, dict) and "annotation" in v for v in meta.values()):
            for name, entry in meta.items():
                ann = Path(entry["annotation"])
                ann = ann if ann.is_absolute() else path.parent / ann
                root = Path(entry.get("root", "")) if entry.get("root") else (image_root or ann.parent)
                root = root if root.is_absolute() else path.parent / root
                yield ann, root
            return
    yield path, image_root or path.parent


def _hf_rows(path: Path, args: argparse.Namespace) -> Iterator[tuple[int, Any]]:
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
                    yield n, _hf_row(rec, args, images_dir)
        return
    if not (path / "dataset_info.json").is_file() and not list(path.glob("*.arrow")):
        raise UsageError(f"{path}: no parquet files and not a save_to_disk dataset directory")
    from datasets import load_from_disk
    ds = load_from_disk(str(path))
    if hasattr(ds, "keys"):               # a DatasetDict: take its first split
        ds = ds[next(iter(ds.keys()))]
    for n, rec in enumerate(ds.with_format("python") if hasattr(ds, "with_format") else ds, 1):
        yield n, _hf_row(rec, args, images_dir)


def _hf_row(rec: dict[str, Any], args: argparse.Namespace, images_dir: Path) -> Any:
    try:
        image = rec[args.image_column]
        text = rec[args.text_column]
    except KeyError as e:
        return Skip(f"no column {e.args[0]!r} (columns: {', '.join(rec)})")
    data = None
    if isinstance(image, dict):
        data = image.get("bytes")
        if data is None and image.get("path"):
            return _ocr_row(str(Path(image["path"]).resolve()), text, args.prompt)
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
    return _ocr_row(str(target.resolve()), text, args.prompt)


def _records(args: argparse.Namespace, paths: Paths) -> Iterator[tuple[str, int, Any]]:
    src: Path = args.input
    if args.fmt in ("llava", "sharegpt"):
        for n, rec in _json_records(src):
            yield str(src), n, rec if isinstance(rec, Skip) else _guard(from_conversations, rec, paths)
    elif args.fmt == "internvl":
        for ann, root in _internvl_sources(src, args.image_root):
            if not ann.is_file():
                yield str(src), 0, Skip(f"annotation file {ann} not found")
                continue
            for n, rec in _json_records(ann):
                yield str(ann), n, rec if isinstance(rec, Skip) else _guard(from_conversations, rec, paths, root)
    elif args.fmt == "alpaca":
        for n, rec in _json_records(src):
            yield str(src), n, rec if isinstance(rec, Skip) else _guard(from_alpaca, rec, paths)
    elif args.fmt in ("csv", "tsv"):
        with open(src, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, delimiter="," if args.fmt == "csv" else "\t")
            missing = {args.image_column, args.text_column} - set(reader.fieldnames or [])
            if missing:
                raise UsageError(f"{src}: no column(s) {', '.join(sorted(missing))}; columns: "
                                 f"{', '.join(reader.fieldnames or [])} (use --image-column/--text-column)")
            for row in reader:
                n = reader.line_num
                yield str(src), n, _guard(lambda r: _ocr_row(paths(r[args.image_column]), r[args.text_column],
                                                             args.prompt), row)
    else:
        for n, rec in _hf_rows(src, args):
            yield str(src), n, rec


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
    out: Path = args.output
    if out.resolve() == src.resolve():
        raise UsageError("the output would overwrite the input; choose another -o")
    paths = Paths(args.image_root or (src if src.is_dir() else src.parent), args.relative_to)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    converted, skipped, examples = 0, Counter(), {}
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for where, n, rec in _records(args, paths):
                if isinstance(rec, Skip):
                    reason = str(rec)
                    key = reason.split(" (")[0].split("'")[0]
                    skipped[key] += 1
                    examples.setdefault(key, f"{where}:{n}: {reason}")
                    continue
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                converted += 1
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    total_skipped = sum(skipped.values())
    print(f"converted {converted} row(s) to {out}; skipped {total_skipped}")
    for key, count in skipped.most_common():
        print(f"  skipped {count:6}  e.g. {examples[key]}")
    if converted == 0:
        print("error: nothing converted", file=sys.stderr)
        return 1
    return 0
