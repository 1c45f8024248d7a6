"""Where validate and swift disagree, by class, on generated files (tests/data/row_grammar.py).

    python benchmarks/parity_classes.py --files 2000 --seed 1 [--template internvl3_5]

Every file goes through swift's own loader (`swift.dataset.load_dataset`, then `template.encode` with the
tiny model of each template) and through data_tools' Validator; rows are matched by the marker in their
answer (tests/data/parity.py). Printed: each disagreement class (file-level, row verdict, token count) with
its count and one example, and the deliberate differences the README lists, counted apart. Long-running by
design (about 0.15 s a file on 2 cores, swift's loader most of it); the CI test runs a fixed seed's corpus.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "data")]


def main() -> int:
    import parity
    from row_grammar import Grammar
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--template", choices=list(parity.TINY), action="append")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="parity-classes-"))
    os.chdir(root)                                          # cwd-relative images resolve here for both sides
    grammar = Grammar(root, args.seed)
    files = [grammar.file(i) for i in range(args.files)]
    oracles = parity.oracles(args.template)
    classes = {o.name: collections.Counter() for o in oracles}
    examples: dict[str, Path] = {}
    tallies = {o.name: collections.Counter() for o in oracles}
    for path, markers in files:
        loaded = parity.swift_load(path)                     # once per file, for every template
        for oracle in oracles:
            found, tally = parity.compare(path, markers, loaded, oracle)
            tallies[oracle.name] += tally
            for c in found:
                classes[oracle.name][c] += 1
                examples.setdefault(c, path)
    rows = sum(len(m) for _, m in files)
    for oracle in oracles:
        agreed = ", ".join(f"{k} {v}" for k, v in sorted(tallies[oracle.name].items()))
        print(f"# {oracle.name}: {len(files)} files, {rows} rows: {sum(classes[oracle.name].values())} "
              f"disagreement(s); agreed: {agreed}")
        for c, n in classes[oracle.name].most_common():
            print(f"{n:6}  {c}\n        e.g. {examples[c]}: {examples[c].read_text(errors='replace')[:300]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
