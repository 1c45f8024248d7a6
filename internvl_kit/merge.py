"""Merge a LoRA checkpoint through `swift export --merge_lora` (the proofs are in merge_proof).

swift's `--exist_ok` silently reuses a stale directory, so the merge always goes to a fresh temp
directory that replaces the target only once proven.
"""
from __future__ import annotations

import os
import subprocess
from collections import deque
from pathlib import Path

from .checkpoint import CheckpointInfo
from .merge_proof import MergeError
from .swift_cmd import SwiftCommand


def run_swift_merge(info: CheckpointInfo, out: Path) -> None:
    args = ["--adapters", str(info.path), "--merge_lora", "true", "--output_dir", str(out),
            "--model_type", info.model_type, "--template", info.template]
    dtype = (info.recipe or {}).get("torch_dtype")
    if dtype:
        args += ["--torch_dtype", dtype]
    cmd = SwiftCommand("export", args, info.env)
    tail: deque[str] = deque(maxlen=30)
    # No hub token for swift: with one set it logs in to the hub while parsing arguments; we push ourselves.
    env = {k: v for k, v in os.environ.items() if k != "MODELSCOPE_API_TOKEN"}
    proc = subprocess.Popen(cmd.argv(), env={**env, **cmd.env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        tail.append(line.rstrip())
    if proc.wait() != 0 or not (out / "config.json").is_file():
        raise MergeError("swift export --merge_lora failed:\n  " + "\n  ".join(tail))


def fresh_dir(target: Path) -> Path:
    """An empty sibling temp directory name (not created: swift refuses existing output dirs)."""
    return target.parent / f".{target.name}.tmp-{os.getpid()}"
