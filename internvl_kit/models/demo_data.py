"""Generate the demo dataset: Pillow-drawn coloured shapes, each answered by its own description.

The task is learnable by a tiny model in a few CPU minutes (few distinct answers, short targets),
so the demo shows the loss falling for real. Images vary in aspect ratio, so tiling is exercised.

    python -m internvl_kit.models.demo_data OUT_DIR [--train 48] [--val 8] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from ..fileio import atomic_write_text

COLORS = {"red": (220, 30, 30), "green": (30, 160, 60), "blue": (30, 60, 220), "yellow": (230, 200, 20)}
SHAPES = ("circle", "square", "triangle")
SIZES = ((64, 64), (112, 56), (56, 112), (96, 72))
PROMPT = "<image>What shape is in the picture, and what colour is it?"


def _draw(shape: str, rgb: tuple[int, int, int], size: tuple[int, int], rng: random.Random):
    from PIL import Image, ImageDraw

    w, h = size
    img = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(img)
    r = min(w, h) // 3
    cx = w // 2 + rng.randint(-w // 8, w // 8)
    cy = h // 2 + rng.randint(-h // 8, h // 8)
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        d.ellipse(box, fill=rgb)
    elif shape == "square":
        d.rectangle(box, fill=rgb)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=rgb)
    return img


def generate(out_dir: str | Path, n_train: int = 48, n_val: int = 8, seed: int = 0) -> dict[str, Path]:
    """Write images/ plus train.jsonl and val.jsonl (absolute image paths) and return the jsonl paths."""
    out = Path(out_dir).resolve()
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    combos = [(s, c) for s in SHAPES for c in COLORS]
    files: dict[str, Path] = {}
    for split, n in (("train", n_train), ("val", n_val)):
        rows = []
        for i in range(n):
            shape, color = combos[rng.randrange(len(combos))]
            size = SIZES[i % len(SIZES)]
            path = out / "images" / f"{split}-{i:04d}.png"
            _draw(shape, COLORS[color], size, rng).save(path, format="PNG")
            rows.append({"messages": [{"role": "user", "content": PROMPT},
                                      {"role": "assistant", "content": f"a {color} {shape}"}],
                         "images": [str(path)]})
        files[split] = out / f"{split}.jsonl"
        atomic_write_text(files[split], "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m internvl_kit.models.demo_data", description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--train", type=int, default=48)
    ap.add_argument("--val", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    for split, path in generate(a.out_dir, a.train, a.val, a.seed).items():
        print(f"{split}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
