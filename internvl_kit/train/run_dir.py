"""Run directories: naming, the self-describing run record, checkpoints, and finding a run to resume.

A run directory holds swift's own files (args.json, logging.jsonl, checkpoint-N/) plus ours:
  run.json     recipe source, overrides, resolved recipe, swift command, env knobs, versions
  recipe.yaml  the resolved recipe, runnable as it is
  command.sh   the exact swift command
run.json and recipe.yaml are also copied into every checkpoint, so a checkpoint copied elsewhere
still tells infer/export which base model, template and tiling knobs it was trained with.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from ..fileio import atomic_write_text, checkpoints

RUN_RECORD = "run.json"
RECIPE_COPY = "recipe.yaml"
COMMAND_FILE = "command.sh"


def new_run_dir(output_dir: str | Path, recipe_name: str, add_version: bool = True) -> Path:
    """OUTPUT_DIR/<recipe>-<YYYYmmdd-HHMMSS>, or OUTPUT_DIR itself when add_version is false."""
    out = Path(output_dir).resolve()
    if not add_version:
        return out
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = out / f"{recipe_name}-{stamp}", 1
    while path.exists():
        n += 1
        path = out / f"{recipe_name}-{stamp}-{n}"
    return path


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint that is complete enough to resume from (has trainer_state.json)."""
    done = [c for c in checkpoints(run_dir) if (c / "trainer_state.json").is_file()]
    return done[-1] if done else None


def read_record(run_dir: Path, name: str = RUN_RECORD) -> dict[str, Any] | None:
    """A JSON object the run (or a checkpoint) holds, or None when it is missing, unreadable or not an object."""
    try:
        data = json.loads((run_dir / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def find_resumable(output_dir: str | Path, recipe_name: str, recipe_file: str | Path
                   ) -> tuple[Path | None, list[Path]]:
    """The most recent run of this recipe file under output_dir that has a checkpoint, and the runs of
    recipes with the same name from other files (a name alone does not say which recipe a run is)."""
    root = Path(output_dir).resolve()
    wanted = str(Path(recipe_file).resolve())
    candidates = [root] + sorted((p for p in root.glob(f"{recipe_name}-*") if p.is_dir()),
                                 key=lambda p: p.stat().st_mtime, reverse=True)
    others = []
    for run in candidates:
        rec = read_record(run)
        if not (rec and rec.get("recipe_name") == recipe_name and last_checkpoint(run)):
            continue
        if rec.get("recipe_file") == wanted:
            return run, others
        others.append(run)
    return None, others


def write_record(run_dir: Path, record: dict[str, Any], resolved_recipe: dict[str, Any], shell: str) -> None:
    """Write run.json, recipe.yaml and command.sh (executable) atomically into run_dir."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / RUN_RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
    header = (f"# Resolved recipe of this run (from {record.get('recipe_file')}"
              f"{' with ' + ' '.join(record['overrides']) if record.get('overrides') else ''}).\n")
    atomic_write_text(run_dir / RECIPE_COPY,
                      header + yaml.safe_dump(resolved_recipe, sort_keys=False, allow_unicode=True))
    atomic_write_text(run_dir / COMMAND_FILE, "#!/usr/bin/env bash\n" + shell + "\n")
    (run_dir / COMMAND_FILE).chmod(0o755)


def append_resume(run_dir: Path, entry: dict[str, Any]) -> None:
    """A resume adds to the run's history; the original record (recipe, overrides, command) stays."""
    record = read_record(run_dir) or {}
    record["resumed"] = list(record.get("resumed", [])) + [entry]
    atomic_write_text(run_dir / RUN_RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")


def stamp_checkpoint(run_dir: Path, ckpt: Path) -> bool:
    """Copy the run record into a checkpoint (idempotent). False if the checkpoint vanished."""
    try:
        for name in (RUN_RECORD, RECIPE_COPY):
            src, dst = run_dir / name, ckpt / name
            if src.is_file() and not dst.is_file():
                shutil.copyfile(src, dst)
        return True
    except FileNotFoundError:   # deleted by save_total_limit while we copied
        return False
