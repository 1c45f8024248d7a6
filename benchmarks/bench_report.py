"""The run report at scale: 10,000 logged steps and 1,000 scored predictions with 1,000 distinct images.

    python benchmarks/bench_report.py [--steps 10000] [--predictions 1000]

Prints the build time of report.html, its size, and the parts of the time (reading the log, thumbnails,
rendering), all from one run. The issue's bar: under 5 s and under 10 MB.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "report")]

from internvl_kit.report import build, predictions, run_page, runlog  # noqa: E402
from synthetic_run import make_run  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--predictions", type=int, default=1_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = make_run(Path(tmp), steps=args.steps, predictions=args.predictions)
        print(f"generated the run in {time.perf_counter() - start:.1f} s (not part of the figures)")
        t0 = time.perf_counter()
        log = runlog.read(run)
        t1 = time.perf_counter()
        scoring = predictions.latest(run)
        thumbs = predictions.Thumbnails()
        for row in scoring.rows:
            for p in row.images:
                thumbs(p)
        t2 = time.perf_counter()
        out = build.write_run(run)
        t3 = time.perf_counter()
        built = run_page.read(run)
        size = out.stat().st_size
        print(f"steps logged:      {len(log.series['loss']):,} ({log.skipped_lines} lines skipped), "
              f"drawn per series <= {runlog.MAX_POINTS}")
        print(f"predictions:       {len(built.scoring.rows):,} rows, {len(thumbs._done):,} images")
        print(f"read the log:      {t1 - t0:.2f} s")
        print(f"thumbnails alone:  {t2 - t1:.2f} s")
        print(f"whole report:      {t3 - t2:.2f} s  (log, scoring, thumbnails, MathML, HTML, atomic write)")
        print(f"report size:       {size / 1e6:.2f} MB")
        print(f"bar: build {'under' if t3 - t2 < 5 else 'OVER'} 5 s, size {'under' if size < 10e6 else 'OVER'} 10 MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
