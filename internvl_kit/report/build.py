"""Write the pages atomically: a report opened while it is rebuilt is the old one or the new one, whole."""
from __future__ import annotations

from pathlib import Path

from ..fileio import atomic_write_text
from . import compare_page, run_page


def write_run(run_dir: Path, output: Path | None = None, ended: bool = False) -> Path:
    out = output or run_dir / run_page.REPORT
    atomic_write_text(out, run_page.render(run_page.read(run_dir, ended)))
    return out


def compare_name(runs: list[Path]) -> str:
    names = "-vs-".join(r.name for r in runs)
    return f"compare-{names if len(names) <= 160 else f'{len(runs)}-runs-' + runs[0].name}.html"


def write_compare(run_dirs: list[Path], output: Path | None = None) -> Path:
    out = output or run_dirs[0].parent / compare_name(run_dirs)
    atomic_write_text(out, compare_page.render([run_page.read(r) for r in run_dirs]))
    return out
