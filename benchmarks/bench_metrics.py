"""CER on page-length OCR: rapidfuzz's C edit distance against the textbook Python dynamic programme.

    python benchmarks/bench_metrics.py [--chars 1000] [--pairs 5]

Prints both timings from one run and their ratio (what infer.py's metrics saved by moving to rapidfuzz).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from internvl_kit.infer.metrics import edit_distance  # noqa: E402


def textbook(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chars", type=int, default=1000)
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()
    rng = random.Random(0)
    pairs = []
    for _ in range(args.pairs):
        a = "".join(rng.choice("abcdefghij \\{}^_=+0123456789") for _ in range(args.chars))
        pairs.append((a, "".join(c if rng.random() > 0.1 else "x" for c in a)))
    edit_distance("warm", "up")            # the import is not part of the per-pair cost
    t = time.perf_counter()
    fast = [edit_distance(a, b) for a, b in pairs]
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    slow = [textbook(a, b) for a, b in pairs]
    t_slow = time.perf_counter() - t
    assert fast == slow
    print(f"{args.pairs} pairs of {args.chars} characters: rapidfuzz {t_fast / args.pairs * 1e3:.3f} ms/pair, "
          f"textbook Python {t_slow / args.pairs * 1e3:.1f} ms/pair: {t_slow / t_fast:,.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
