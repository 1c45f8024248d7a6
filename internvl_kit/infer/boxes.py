"""Boxes in answers, as InternVL writes them: `<ref>label</ref><box>[[x1, y1, x2, y2], ...]</box>` on the
0-1000 grid of the image. Scored by IoU: the grid scales x and y by constants, which leaves every IoU as it
is in pixels, so the grid is compared directly; pixels are needed only to draw.

Per row: a referring row (one reference box) scores the IoU of the first predicted box, and counts for
Acc@0.5; a row of several boxes matches predictions to references greedily by IoU (>= 0.5), for precision and
recall over all such rows.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_BOX = re.compile(r"(?:<ref>(.*?)</ref>\s*)?<box>\s*(\[.*?\])\s*</box>", re.S)
_NUMBERS = re.compile(r"-?\d+(?:\.\d+)?")
THRESHOLD = 0.5
GRID = 1000


@dataclass(frozen=True)
class Box:
    label: str | None
    x1: float
    y1: float
    x2: float
    y2: float

    def pixels(self, width: int, height: int) -> tuple[float, float, float, float]:
        return (self.x1 * width / GRID, self.y1 * height / GRID, self.x2 * width / GRID, self.y2 * height / GRID)


def parse(text: str) -> list[Box]:
    """Every box of an answer (a `<box>` may hold several), with the `<ref>` right before it as its label."""
    out = []
    for m in _BOX.finditer(text or ""):
        label = m.group(1).strip() if m.group(1) is not None else None
        for group in re.findall(r"\[([^\[\]]*)\]", m.group(2)):
            nums = [float(n) for n in _NUMBERS.findall(group)]
            if len(nums) == 4:
                x1, y1, x2, y2 = nums
                out.append(Box(label, min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)))
    return out


def iou(a: Box, b: Box) -> float:
    w = min(a.x2, b.x2) - max(a.x1, b.x1)
    h = min(a.y2, b.y2) - max(a.y1, b.y1)
    inter = max(0.0, w) * max(0.0, h)
    union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter
    return inter / union if union > 0 else 0.0


def matches(preds: list[Box], refs: list[Box]) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching, highest IoU first: (pred index, ref index, IoU) with IoU >= THRESHOLD."""
    pairs = sorted(((iou(p, r), i, j) for i, p in enumerate(preds) for j, r in enumerate(refs)), reverse=True)
    used_p, used_r, out = set(), set(), []
    for value, i, j in pairs:
        if value < THRESHOLD:
            break
        if i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
            out.append((i, j, value))
    return out


def row_score(pred: str, ref: str) -> dict[str, Any] | None:
    """IoU (referring rows) or matched/predicted/reference counts (rows of several boxes); None: no boxes."""
    refs = parse(ref)
    if not refs:
        return None
    preds = parse(pred)
    if len(refs) == 1:
        value = iou(preds[0], refs[0]) if preds else 0.0
        return {"kind": "referring", "iou": value, "hit": value >= THRESHOLD}
    return {"kind": "boxes", "matched": len(matches(preds, refs)), "predicted": len(preds), "reference": len(refs)}


def score(preds: list[str], refs: list[str]) -> dict[str, Any]:
    """Box metrics over the rows whose reference has boxes (an empty dict when none has)."""
    rows = [s for s in (row_score(p, r) for p, r in zip(preds, refs)) if s is not None]
    if not rows:
        return {}
    referring = [s for s in rows if s["kind"] == "referring"]
    multi = [s for s in rows if s["kind"] == "boxes"]
    out: dict[str, Any] = {"box_rows": len(rows)}
    if referring:
        out["mean_iou"] = sum(s["iou"] for s in referring) / len(referring)
        out["acc_at_0.5"] = sum(s["hit"] for s in referring) / len(referring)
        out["referring_rows"] = len(referring)
    if multi:
        matched = sum(s["matched"] for s in multi)
        predicted = sum(s["predicted"] for s in multi)
        out["precision_at_0.5"] = matched / predicted if predicted else 0.0
        out["recall_at_0.5"] = matched / sum(s["reference"] for s in multi)
        out["multi_box_rows"] = len(multi)
    return out
