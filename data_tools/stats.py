"""Dataset statistics: samples, turns, images, tiles and token-length percentiles."""
from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

from . import context
from .report import record
from .validate import Report, Sample, Validator


def _pct(values: list[int], q: float) -> int:
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0


def run(args: argparse.Namespace) -> int:
    setup = context.build(args.recipe, max_length=args.max_length, max_num=args.max_num, model=args.model,
                          template=args.template, tokenizer=args.tokenizer, image_root=args.image_root)
    # the row checks only: this command counts lengths itself, from the same per-row records as
    # `validate --report`
    v = Validator(replace(setup.options, counter=None))
    turns, per_sample, tiles = Counter(), Counter(), Counter()
    text, image, total, rejected = [], [], [], []
    longest: list[int] = []            # per row, its longer side: what max_length must hold
    pairs = 0
    report = Report()
    grounded: list[tuple[Path, int, Sample]] = []       # rows with boxes, for --draw

    def measure(rec: dict, answers: int, pair: bool) -> None:
        nonlocal pairs
        turns[answers] += 1
        per_sample[rec["images"]] += 1
        pairs += pair
        if "tokens" in rec:
            tiles.update(rec["tiles"])
            text.append(rec["tokens"]["text"] + rec["tokens"]["template"])
            image.append(rec["tokens"]["image"])
            total.append(rec["tokens"]["total"])
            if "rejected_tokens" in rec:
                rejected.append(rec["rejected_tokens"])
            longest.append(max(rec["tokens"]["total"], rec.get("rejected_tokens", 0)))

    for f in args.files:
        # a file's rows count once its verdict is known: none when swift's loader fails on the file, and
        # not those it drops for their format (kept meanwhile as their small per-row records)
        kept: list[tuple[tuple[int, int], dict, int]] = []
        seen: dict[int, int] = {}

        def keep(n: int, codes: list[str], sample: Sample | None, _f: Path = f) -> None:
            where = (n, seen.get(n, 0))
            seen[n] = where[1] + 1
            if sample is not None and args.draw and sample.row.get("objects") is not None:
                grounded.append((_f, n, sample))
            if sample is not None:
                kept.append((where, record(_f, n, codes, sample, setup.options.counter, setup.options.max_num),
                             sum(m["role"] == "assistant" for m in sample.row["messages"]),
                             sample.rejected_sizes is not None))

        verdict = v.validate_file(f, report, lambda issue: None, on_row=keep)
        for where, rec, answers, pair in kept if verdict.loads else ():
            if where not in verdict.dropped:
                measure(rec, answers, pair)
    for xs in (text, image, total, rejected):
        xs.sort()
    limit = setup.options.max_length
    over = sum(t > limit for t in longest) if limit else None
    stats = {
        "samples": report.samples, "usable": len(total), "skipped_with_errors": report.samples - len(total),
        "preference_pairs": pairs,
        "turns": dict(sorted(turns.items())), "images_per_sample": dict(sorted(per_sample.items())),
        "tiles_per_image": dict(sorted(tiles.items())),
        "tokens": {name: {f"p{int(q * 100)}": _pct(xs, q) for q in (0.5, 0.9, 0.99)} | {"max": xs[-1] if xs else 0}
                   for name, xs in (("text_and_template", text), ("image", image), ("total", total))
                   + ((("rejected_total", rejected),) if rejected else ())},
        "max_length": limit, "over_max_length": over, "counting": setup.note,
    }
    if args.json:
        print(json.dumps(stats))
    else:
        print(f"samples {stats['samples']} (usable {stats['usable']}, with errors {stats['skipped_with_errors']})"
              + (f"; {pairs} preference pair(s)" if pairs else ""))
        print(f"assistant turns per sample: {stats['turns']}")
        print(f"images per sample: {stats['images_per_sample']}")
        print(f"tiles per image: {stats['tiles_per_image']}")
        for name, p in stats["tokens"].items():
            label = {"text_and_template": "text+template", "rejected_total": "rejected"}.get(name, name)
            print(f"{label:13} tokens  p50 {p['p50']:7}  p90 {p['p90']:7}  p99 {p['p99']:7}  max {p['max']:7}")
        if limit:
            print(f"over max_length {limit}: {over} sample(s)" + (" (either side of a pair)" if pairs else ""))
        print(setup.note)
    if args.plot:
        plot(total, limit, args.plot)
        print(f"histogram: {args.plot}")
    if args.draw:
        out = args.draw_dir or Path(f"{args.files[0].stem}-boxes")
        written = draw_sample(grounded, args.draw, out)
        print(f"boxes: {len(written)} image(s) in {out}" if written else "boxes: no grounding rows to draw")
    return 0


def draw_sample(rows: list[tuple[Path, int, Sample]], n: int, out: Path, seed: int = 0) -> list[Path]:
    """N rows drawn at random (the same N for the same seed), each image with its boxes: FILE-LINE-IMAGE.png."""
    import random

    from .grounding import REFERENCE, draw, pixel_boxes
    picked = sorted(random.Random(seed).sample(rows, min(n, len(rows))), key=lambda r: (str(r[0]), r[1]))
    written = []
    for path, line, sample in picked:
        by_image: dict[int, list] = {}
        for image, label, box in pixel_boxes(sample.row, sample.image_sizes):
            by_image.setdefault(image, []).append((label, box, REFERENCE))
        for image, boxes in sorted(by_image.items()):
            ref = sample.row["images"][image]
            if isinstance(ref, str) and Path(ref).is_file():
                written.append(draw(ref, boxes, out / f"{path.stem}-{line}-{image}.png"))
    return written


def plot(lengths: list[int], limit: int | None, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .fileio import atomic_write_bytes
    import io

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.hist(lengths, bins=min(60, max(10, len(set(lengths)))), color="#4C72B0", edgecolor="white")
    if limit:
        ax.axvline(limit, color="#C44E52", linewidth=2, label=f"max_length {limit}")
        over = sum(x > limit for x in lengths)
        ax.legend(title=f"{over} of {len(lengths)} over")
    ax.set_xlabel("tokens per sample (text + template + image)")
    ax.set_ylabel("samples")
    ax.set_title("Token length distribution")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())
