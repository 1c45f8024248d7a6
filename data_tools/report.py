"""Per-row numbers: tokens (text / template / image; a preference row's rejected side too), tiles per image
and the verdict, one record per row. `validate --report FILE` writes them as JSON lines; `stats` aggregates the same records."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import preference
from .tokens import Counter
from .validate import ERRORS, Sample


def record(path: Path, line: int, codes: list[str], sample: Sample | None, counter: Counter | None,
           max_num: int | None) -> dict[str, Any]:
    """One row: where it is, what validate said, and what swift's template would make of it."""
    errors = sorted({c for c in codes if c in ERRORS})
    out: dict[str, Any] = {"file": str(path), "line": line, "verdict": "error" if errors else "ok",
                           "errors": errors, "warnings": sorted({c for c in codes if c not in ERRORS}),
                           "loaded": True}
    if sample is not None:
        out["images"] = len(sample.image_sizes)
        out["image_sizes"] = [list(s) for s in sample.image_sizes]
        if counter is not None and not sample.row.get("videos"):
            # validate's length check kept its counts (Options.breakdown); stats runs without it and counts here
            b = sample.tokens or counter.count(sample.row["messages"], sample.image_sizes, max_num)
            out.update(tokens={"text": b.text, "template": b.template, "image": b.image, "total": b.total},
                       tiles=b.tiles)
            rejected = preference.rejected_messages(sample.row) if sample.rejected_sizes is not None else None
            if rejected is not None:        # a preference row: swift encodes the rejected side on its own
                out["rejected_tokens"] = (sample.rejected_tokens if sample.rejected_tokens is not None
                                          else counter.total(rejected, sample.rejected_sizes, max_num))
    return out
