"""`python -m internvl_kit.report RUN [RUN ...]`: write a run's report.html, or one page comparing runs."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """examples:
  python -m internvl_kit.report output/tiny-demo/<run>             # (re)writes <run>/report.html, also mid-run
  python -m internvl_kit.report RUN_A RUN_B -o compare.html        # curves overlaid, recipe diff, side by side
  python -m internvl_kit.report RUN --screenshot report.png        # also a PNG of the page (headless Chromium)

train.py writes the report when a run ends and infer.py refreshes it after scoring. The page is one file:
it opens from disk with no network and no server.
"""


def run_dir_of(path: Path) -> Path | None:
    """The run directory a path names: the run itself, or one of its checkpoints."""
    for candidate in (path, path.parent):
        if (candidate / "run.json").is_file() or (candidate / "logging.jsonl").is_file():
            return candidate
    return None


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m internvl_kit.report", description=__doc__.split("\n")[0].split(": ", 1)[1],
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="run directories (or checkpoints of them)")
    ap.add_argument("-o", "--output", type=Path, help="where to write (default: RUN/report.html; for several runs "
                                                      "compare-<runs>.html beside the first)")
    ap.add_argument("--screenshot", type=Path, help="also save a PNG of the page, taken in headless Chromium")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only the path written")
    ap.add_argument("--ended", action="store_true", help="the training has ended (train.py says so): an unfinished "
                                                         "run reads as stopped, not in progress")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runs = []
    for path in args.runs:
        run = run_dir_of(path.resolve())
        if run is None:
            print(f"error: {path}: not a run directory (no run.json or logging.jsonl there or in its parent)",
                  file=sys.stderr)
            return 2
        runs.append(run)
    from .build import write_compare, write_run
    try:
        out = write_run(runs[0], args.output, args.ended) if len(runs) == 1 else write_compare(runs, args.output)
    except OSError as e:
        print(f"error: cannot write the report: {e.strerror or e} ({e.filename or ''})", file=sys.stderr)
        return 1
    size = out.stat().st_size
    print(str(out) if args.quiet else f"[ok]    report: {out} ({size / 1e6:.2f} MB)")
    if args.screenshot:
        from .browser import BrowserError, open_report
        try:
            with open_report(out) as page:
                page.screenshot(args.screenshot)
        except BrowserError as e:
            print(f"error: --screenshot: {e}", file=sys.stderr)
            return 1
        print(f"[ok]    screenshot: {args.screenshot}")
    return 0
