"""Atomic file writes: a reader (or a crash) never sees a half-written output (the primitive lives in
data_tools, which stands alone); and the one listing of a run's checkpoint-N directories."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from data_tools.fileio import atomic_write_bytes


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text to path via a temp file in the same directory, fsync, then rename."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def replace_dir(tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """Put a fully written directory in target's place (the old one, if any, goes only now)."""
    if os.path.exists(target):
        shutil.rmtree(target)
    os.replace(tmp, target)


_CKPT = re.compile(r"^checkpoint-(\d+)$")


def checkpoints(run_dir: Path) -> list[Path]:
    """A run directory's checkpoint-N dirs in step order (recipes name them in from_sft; runs resume from them)."""
    found = [(int(m.group(1)), p) for p in run_dir.glob("checkpoint-*")
             if p.is_dir() and (m := _CKPT.match(p.name))]
    return [p for _, p in sorted(found)]
