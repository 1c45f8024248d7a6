"""The recipe catalogue: every recipe with its model, GPUs and estimated memory per GPU.

`python train.py --list` prints it; README.md embeds the same table between markers, and a test
checks that the README copy is current (`python train.py --list --markdown` regenerates it).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..models import family, memory
from . import RECIPES_DIR, load_recipe

DEFAULT_GPU_GIB = 74.5          # an "80 GB" A100 / H100 as marketed (80e9 bytes), in GiB
README_START, README_END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"


@dataclass
class Row:
    recipe: str
    model: str
    gpus: int
    strategy: str
    gib_per_gpu: float | None
    error: str | None = None        # a recipe that does not load is listed with its first problem


def recipe_files() -> list[Path]:
    return sorted(p for p in RECIPES_DIR.glob("*.yaml"))


def rows() -> list[Row]:
    from . import RecipeError
    out = []
    for path in recipe_files():
        name = path.relative_to(RECIPES_DIR.parent).as_posix()
        try:
            r = load_recipe(path)
        except RecipeError as e:
            out.append(Row(name, "-", 0, "-", None, str(e.problems[0]) if e.problems else str(e)))
            continue
        d = r.data
        setup = memory.Setup.from_recipe(d)
        spec = family.find(d["model"])
        gib = memory.estimate(spec.spec, setup).total if spec else None
        strategy = d.get("deepspeed") or d.get("fsdp") or ("DDP" if setup.gpus > 1 else "single GPU")
        if d["model"].startswith("builtin:"):
            strategy = "CPU"
        out.append(Row(name, d["model"], setup.gpus, strategy, gib))
    return out


def text() -> str:
    lines = [f"{'recipe':46} {'model':44} {'GPUs':>4}  {'strategy':12} {'est. GiB/GPU':>12}"]
    for r in rows():
        if r.error:
            lines.append(f"{r.recipe:46} BROKEN: {r.error}")
            continue
        gib = f"{r.gib_per_gpu:.1f}" if r.gib_per_gpu is not None else "-"
        lines.append(f"{r.recipe:46} {r.model:44} {r.gpus:4}  {r.strategy:12} {gib:>12}")
    return "\n".join(lines)


def markdown() -> str:
    lines = ["| recipe | model | GPUs | strategy | est. memory per GPU |", "| --- | --- | --- | --- | --- |"]
    for r in rows():
        if r.error:
            lines.append(f"| `{r.recipe}` | broken: {r.error.replace('|', '/')} | - | - | - |")
            continue
        gib = f"{r.gib_per_gpu:.1f} GiB" if r.gib_per_gpu is not None else "-"
        lines.append(f"| `{r.recipe}` | `{r.model}` | {r.gpus} | {r.strategy} | {gib} |")
    return "\n".join(lines)
