"""Merge a LoRA checkpoint through `swift export --merge_lora` (the proofs are in merge_proof).

swift's `--exist_ok` silently reuses a stale directory, so the merge always goes to a fresh temp
directory that replaces the target only once proven.
"""
from __future__ import annotations

import os
import subprocess
import time
from collections import deque
from pathlib import Path

from ..infer.checkpoint import CheckpointInfo
from .merge_proof import MergeError
from ..train.supervise import ABORT_AT_EXIT, aborted_at_exit, stop_signals, supervised
from ..train.swift_cmd import SwiftCommand


# swift's own log lines that mark the phases of a merge -> what the user sees meanwhile
PHASES = (("Loading weights", "loading the base model and the adapter"), ("Merge LoRA...", "merging LoRA"),
          ("Saving merged weights...", "saving the merged weights"))


def run_swift_merge(info: CheckpointInfo, out: Path, progress=print) -> None:
    args = ["--adapters", str(info.path), "--merge_lora", "true", "--output_dir", str(out),
            "--model_type", info.model_type, "--template", info.template]
    dtype = (info.recipe or {}).get("torch_dtype")
    if dtype:
        args += ["--torch_dtype", dtype]
    cmd = SwiftCommand("export", args, info.env)
    tail: deque[str] = deque(maxlen=30)
    # No hub token for swift: with one set it logs in to the hub while parsing arguments; we push ourselves.
    env = {k: v for k, v in os.environ.items() if k != "MODELSCOPE_API_TOKEN"}
    start, shown = time.perf_counter(), set()
    with stop_signals(), supervised(cmd.argv(), env={**env, **cmd.env}, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True) as proc:
        for line in proc.stdout:
            tail.append(line.rstrip())
            for marker, phase in PHASES:
                if marker in line and phase not in shown:
                    shown.add(phase)
                    progress(f"[merge] {phase} ({time.perf_counter() - start:.0f} s)")
        proc.wait()
    if aborted_at_exit(proc.returncode, tail) and (out / "config.json").is_file():
        progress(f"[merge] swift saved the merge, then aborted while exiting (\"{ABORT_AT_EXIT}\", pytorch#38228); "
                 f"the proofs below check what it wrote")
    elif proc.returncode != 0 or not (out / "config.json").is_file():
        raise MergeError("swift export --merge_lora failed:\n  " + "\n  ".join(tail))


def fresh_dir(target: Path) -> Path:
    """An empty sibling temp directory name (not created: swift refuses existing output dirs)."""
    return target.parent / f".{target.name}.tmp-{os.getpid()}"
