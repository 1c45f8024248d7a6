"""swift's logging.jsonl as curves: training and eval series by step, checkpoints and resumes to mark.

swift appends one JSON object per logging step (loss, grad_norm, learning_rate, token_acc,
`global_step/max_steps`, `train_speed(s/it)`, `memory(GiB)` on GPUs), one per evaluation (eval_*), and a
final summary row. A resumed run appends again from its checkpoint's step, so a step can occur twice: the
later row is the one the finished run stands on. A half-written last line (a run still going) is skipped.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fileio import checkpoints

LOG = "logging.jsonl"
MAX_POINTS = 600                 # per drawn series: min and max of each bucket keep spikes visible
# Keys that are bookkeeping, not curves
_NOT_CURVES = {"epoch", "global_step/max_steps", "elapsed_time", "remaining_time", "step", "total_flos",
               "eval_runtime", "eval_samples_per_second", "eval_steps_per_second"}
# (chart title, y label, keys in drawing order): the charts every run gets when it logged those keys
CHARTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Loss", "loss", ("loss", "eval_loss")),
    ("Learning rate", "lr", ("learning_rate",)),
    ("Gradient norm", "grad norm", ("grad_norm",)),
    ("Token accuracy", "accuracy", ("token_acc", "eval_token_acc")),
    ("Throughput", "seconds per step", ("train_speed(s/it)",)),
    ("Memory", "GiB (max reserved)", ("memory(GiB)",)),
)
_STEP = re.compile(r"^(\d+)/(\d+)$")


@dataclass
class RunLog:
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)   # key -> (step, value), by step
    max_steps: int | None = None
    last_step: int = 0
    checkpoints: list[int] = field(default_factory=list)
    resumes: list[int] = field(default_factory=list)        # steps the run was resumed from
    summary: dict[str, Any] = field(default_factory=dict)   # swift's train_runtime/train_loss row, once done
    skipped_lines: int = 0

    @property
    def done(self) -> bool:
        return "train_runtime" in self.summary

    def charts(self) -> list[dict[str, Any]]:
        """The charts to draw: the fixed ones with data, then one per family of other logged keys
        (rewards/*, logps/*, ... of preference runs), each series thinned and the loss also smoothed."""
        taken: set[str] = set()
        out = []
        for title, ylabel, keys in CHARTS:
            present = [k for k in keys if len(self.series.get(k, ())) >= 1]
            taken.update(keys)
            if present:
                out.append(self._chart(title, ylabel, present))
        families: dict[str, list[str]] = {}
        for key in self.series:
            if key not in taken:
                families.setdefault(key.split("/")[0] if "/" in key else key, []).append(key)
        for family, keys in families.items():
            out.append(self._chart(family, family, sorted(keys)))
        return out

    def _chart(self, title: str, ylabel: str, keys: list[str]) -> dict[str, Any]:
        lines = []
        for key in keys:
            points = self.series[key]
            eval_key = key.startswith("eval_")
            if key == "loss" and len(points) > 2:
                lines.append({"name": "loss (raw)", "points": thin(points), "style": "raw"})
                lines.append({"name": "loss (smoothed)", "points": thin(smooth(points)), "style": "main"})
            else:
                lines.append({"name": key, "points": thin(points), "style": "eval" if eval_key else "main"})
        return {"title": title, "ylabel": ylabel, "lines": lines}


def _step(row: dict[str, Any]) -> tuple[int, int | None] | None:
    m = _STEP.match(str(row.get("global_step/max_steps", "")))
    if m:
        return int(m.group(1)), int(m.group(2))
    if isinstance(row.get("global_step"), int):
        return row["global_step"], None
    return None


def read(run_dir: Path) -> RunLog:
    """The run's curves as they stand (also mid-run); an absent log gives an empty RunLog."""
    log = RunLog()
    values: dict[str, dict[int, float]] = {}
    path = run_dir / LOG
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            log.skipped_lines += 1
            continue
        if not isinstance(row, dict):
            continue
        if "train_runtime" in row or "log_history" in row:
            log.summary.update({k: v for k, v in row.items() if k != "log_history"})
            continue
        at = _step(row)
        if at is None:
            continue
        step, total = at
        log.last_step = max(log.last_step, step)
        log.max_steps = total or log.max_steps
        for key, value in row.items():
            if key in _NOT_CURVES or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                values.setdefault(key, {})[step] = float(value)     # a resumed run's row replaces the first
    log.series = {k: sorted(v.items()) for k, v in values.items()}
    log.checkpoints = [int(c.name.split("-")[1]) for c in checkpoints(run_dir)]
    log.resumes = _resumes(run_dir)
    return log


def _resumes(run_dir: Path) -> list[int]:
    try:
        record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    steps = []
    for entry in record.get("resumed") or [] if isinstance(record, dict) else []:
        m = re.search(r"checkpoint-(\d+)/?$", str(entry.get("from", "")) if isinstance(entry, dict) else "")
        if m:
            steps.append(int(m.group(1)))
    return steps


def smooth(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Debiased exponential moving average (TensorBoard's smoothing) over about a twentieth of the points."""
    window = min(200.0, max(1.0, len(points) / 20))
    alpha = 2 / (window + 1)
    out, avg, weight = [], 0.0, 0.0
    for step, value in points:
        avg = (1 - alpha) * avg + alpha * value
        weight = (1 - alpha) * weight + alpha
        out.append((step, avg / weight))
    return out


def thin(points: list[tuple[int, float]], limit: int = MAX_POINTS) -> list[list[float]]:
    """At most `limit` points: each of limit/2 step buckets keeps its lowest and highest value in step order."""
    if len(points) <= limit:
        return [[s, _round(v)] for s, v in points]
    buckets = limit // 2
    size = len(points) / buckets
    out = []
    for b in range(buckets):
        chunk = points[int(b * size):int((b + 1) * size)]
        if not chunk:
            continue
        lo, hi = min(chunk, key=lambda p: p[1]), max(chunk, key=lambda p: p[1])
        out += [[s, _round(v)] for s, v in sorted({lo, hi})]
    return out


def _round(value: float) -> float:
    return float(f"{value:.6g}")
