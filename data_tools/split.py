"""Deterministic train/val split in which rows sharing an image (a preference pair's rejected_images
included) never land on both sides."""
from __future__ import annotations

import argparse
import random
from pathlib import Path

from .context import UsageError


def _images(raw: bytes) -> list[str]:
    import orjson
    try:
        row = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return []
    out: list[str] = []
    for key in ("images", "rejected_images"):       # a preference pair's rejected side links rows too
        imgs = row.get(key) if isinstance(row, dict) else None
        out += [imgs] if isinstance(imgs, str) else [i for i in (imgs or []) if isinstance(i, str)]
    return out


def groups(lines: list[bytes]) -> list[list[int]]:
    """Connected components of rows linked by shared image paths (union-find), in first-row order."""
    parent = list(range(len(lines)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, raw in enumerate(lines):
        for img in _images(raw):
            if img in owner:
                parent[find(i)] = find(owner[img])
            else:
                owner[img] = i
    comps: dict[int, list[int]] = {}
    for i in range(len(lines)):
        comps.setdefault(find(i), []).append(i)
    return list(comps.values())


def run(args: argparse.Namespace) -> int:
    from .fileio import atomic_write_bytes
    if not args.file.is_file():
        raise UsageError(f"{args.file}: no such file")
    lines = [ln if ln.endswith(b"\n") else ln + b"\n" for ln in args.file.read_bytes().splitlines(keepends=True)
             if ln.strip()]
    try:
        val = float(args.val)
    except ValueError:
        raise UsageError(f"--val {args.val!r}: a fraction like 0.05 or a row count like 500") from None
    target = round(val * len(lines)) if 0 < val < 1 else int(val)
    if target < 1 or target >= len(lines):
        raise UsageError(f"--val {args.val} gives {target} of {len(lines)} rows; need 1..{len(lines) - 1}")
    comps = groups(lines)
    random.Random(args.seed).shuffle(comps)
    val_rows: set[int] = set()
    for comp in comps:
        if len(val_rows) >= target:
            break
        if len(val_rows) + len(comp) <= target or not val_rows:
            val_rows.update(comp)
    out: Path = args.output_dir
    train = b"".join(ln for i, ln in enumerate(lines) if i not in val_rows)
    valid = b"".join(ln for i, ln in enumerate(lines) if i in val_rows)
    atomic_write_bytes(out / "train.jsonl", train)
    atomic_write_bytes(out / "val.jsonl", valid)
    print(f"train: {len(lines) - len(val_rows)} rows -> {out / 'train.jsonl'}")
    print(f"val:   {len(val_rows)} rows -> {out / 'val.jsonl'} (asked {target}; "
          f"{len(comps)} groups of rows sharing images, seed {args.seed})")
    return 0
