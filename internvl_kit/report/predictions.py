"""What infer.py saved for a run: every metrics file under its checkpoints, and the newest one's predictions
scored row by row, with image thumbnails small enough for a page that stays under a few MB."""
from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fileio import checkpoints
from ..infer.metrics import cer, normalize
from .formulas import looks_like_latex

THUMB_BOX = (224, 112)        # px: a LaTeX line stays legible, a square image gets 112x112
THUMB_QUALITY = 70
# the columns infer.py writes per model: tuned, then --compare-base's base and (a chained run) its start
MODELS = (("tuned", "prediction"), ("base", "prediction_base"), ("sft", "prediction_sft"),
          ("start", "prediction_start"))


@dataclass
class Scored:
    """One model's answer to one row: exact after normalisation (spacing-insensitive) and its CER."""
    text: str
    correct: bool
    cer: float


@dataclass
class Row:
    line: int
    prompt: str
    reference: str
    images: list[str]
    answers: dict[str, Scored] = field(default_factory=dict)     # model name -> answer
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        return "correct" if self.answers["tuned"].correct else "wrong"

    @property
    def latex(self) -> bool:
        return looks_like_latex(self.reference)

    def sort_key(self) -> tuple:
        """Failures first: rows that could not run, then wrong answers worst first, then the correct ones."""
        order = {"error": 0, "wrong": 1, "correct": 2}[self.status]
        return order, -(self.answers["tuned"].cer if "tuned" in self.answers else 0.0), self.line


@dataclass
class Scoring:
    metrics_file: Path
    report: dict[str, Any]               # the metrics JSON infer.py wrote
    rows: list[Row]
    models: list[str]                    # the answer columns present, tuned first

    @property
    def dataset(self) -> str:
        return str(self.report.get("dataset", ""))


def metrics_files(run_dir: Path) -> list[Path]:
    """Every `infer/*.metrics.json` under the run's checkpoints (and the run dir), oldest first."""
    found = [p for c in [*checkpoints(run_dir), run_dir] for p in (c / "infer").glob("*.metrics.json")]
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, str(p)))


def read_metrics(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("metrics"), dict) else None


def _predictions_path(metrics_file: Path, report: dict[str, Any]) -> Path | None:
    named = report.get("predictions")
    for candidate in ([Path(named)] if named else []) + [metrics_file.with_name(
            metrics_file.name.removesuffix(".metrics.json") + ".jsonl")]:
        if candidate.is_file():
            return candidate
    return None


def latest(run_dir: Path) -> Scoring | None:
    """The newest scoring of the run whose predictions file is still there, scored row by row."""
    for path in reversed(metrics_files(run_dir)):
        report = read_metrics(path)
        preds = _predictions_path(path, report) if report else None
        if report and preds:
            return load(path, report, preds)
    return None


def _prompt(messages: list[dict[str, Any]]) -> str:
    users = [m.get("content") for m in messages[:-1] if m.get("role") == "user"]
    return str(users[-1]) if users else ""


def load(metrics_file: Path, report: dict[str, Any], predictions: Path) -> Scoring:
    rows = []
    with open(predictions, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict):
                continue
            messages = rec.get("messages") if isinstance(rec.get("messages"), list) else []
            reference = str(messages[-1].get("content", "")) if messages and isinstance(messages[-1], dict) else ""
            reference = rec["reference"] if isinstance(rec.get("reference"), str) else reference   # boxes written out
            images = rec.get("images") or []
            row = Row(int(rec.get("line", n)), _prompt(messages), reference,
                      [images] if isinstance(images, str) else [str(i) for i in images], error=rec.get("error"))
            for name, column in MODELS:
                if isinstance(rec.get(column), str):
                    text = rec[column]
                    row.answers[name] = Scored(text, normalize(text) == normalize(reference), cer(text, reference))
            if row.error is None and "tuned" not in row.answers:
                row.error = "no prediction recorded"
            rows.append(row)
    present = [name for name, _ in MODELS if any(name in r.answers for r in rows)]
    return Scoring(metrics_file, report, sorted(rows, key=Row.sort_key), present)


class Thumbnails:
    """Each image file once, downscaled into THUMB_BOX as a JPEG data URI (None: it does not open)."""

    def __init__(self) -> None:
        self._done: dict[str, str | None] = {}

    def __call__(self, path: str) -> str | None:
        if path not in self._done:
            self._done[path] = _thumbnail(path)
        return self._done[path]


def _thumbnail(path: str) -> str | None:
    from PIL import Image
    try:
        with Image.open(path) as im:
            im.draft("RGB", THUMB_BOX)           # JPEGs decode at a fraction of their size: much faster
            # no exif_transpose: swift's load_image ignores EXIF orientation, so the stored pixels are what
            # the model saw, and what a reader must judge its answer against
            im = im.convert("RGB")
            im.thumbnail(THUMB_BOX)
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=THUMB_QUALITY, optimize=True)
    except Exception:  # noqa: BLE001 - a missing or undecodable image becomes a placeholder, not a crash
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
