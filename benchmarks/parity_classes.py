"""Where validate and swift disagree, by class, on generated files (tests/data/row_grammar.py).

    python benchmarks/parity_classes.py --files 2000 --seed 1 [--template internvl3_5]

Every file goes through swift's own loader (`swift.dataset.load_dataset`, then `template.encode` with the
tiny model of the template) and through data_tools' Validator; rows are matched by the marker in their
answer. Printed: each disagreement class (file-level, row verdict, token count) with its count and one
example. Long-running by design (about 0.3 s a file on 2 cores); the CI test runs a fixed seed's corpus.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "data")]
TINY = {"internvl_hf": ("builtin:tiny-internvl-hf", None, None), "internvl2_5": ("builtin:tiny-internvl3", 6, 56),
        "internvl3_5": ("builtin:tiny-internvl3_5", 6, 56)}


def _marker(text: str, markers: list[str]) -> str | None:
    return next((m for m in sorted(markers, key=len, reverse=True) if re.search(re.escape(m) + r"(?![0-9a-z])", text)),
                None)


def swift_side(path: Path, markers: list[str], template) -> dict[str, int | None] | None:
    """marker -> swift's token count (None: swift's encode refuses it), or None when the file fails to load."""
    from swift.dataset import load_dataset
    try:
        ds, _ = load_dataset([str(path)], num_proc=1, load_from_cache_file=False)
    except Exception:  # noqa: BLE001 - whatever swift raises, the file does not load
        return None
    out = {}
    for row in ds:
        try:
            tokens = len(template.encode({k: v for k, v in row.items() if k != "dataset"})["input_ids"])
        except Exception:  # noqa: BLE001 - any failure is swift refusing the row
            tokens = None
        out[_marker(json.dumps(row.get("messages"), ensure_ascii=False), markers)] = tokens
    return out


def our_side(path: Path, markers: list[str], validator) -> tuple[dict[str, int] | None, dict[str, list[str]]]:
    """marker -> validate's token count for accepted rows (None: a file-level error), and codes per marker."""
    from data_tools.validate import ERRORS, Report
    rows, codes_of, line_of, issues = {}, {}, {}, []

    raw = path.read_bytes().decode("utf-8", "replace").splitlines()

    def on_row(n: int, codes: list[str], sample) -> None:
        if sample is None:                       # refused: the marker is in its line as written
            for marker in markers:
                if n <= len(raw) and re.search(re.escape(marker) + r"(?![0-9a-z])", raw[n - 1]):
                    codes_of.setdefault(marker, []).extend(codes)
                    line_of.setdefault(marker, n)
            return
        marker = _marker(json.dumps(sample.row.get("messages"), ensure_ascii=False), markers)
        codes_of[marker], line_of[marker] = list(codes), n
        if not set(codes) & ERRORS:
            rows[marker] = validator.check_length(sample, lambda *a: None)

    validator.validate_file(path, Report(), issues.append, on_row=on_row)
    if any(i.code == "file" for i in issues):
        return None, codes_of
    late = {(i.line, i.code) for i in issues if i.code in ERRORS}      # file-level checks name their rows' lines
    for marker, n in line_of.items():
        codes_of[marker] += [code for line, code in late if line == n and code not in codes_of[marker]]
        if any(line == n for line, _ in late):
            rows.pop(marker, None)
    return rows, codes_of


def classify(path: Path, markers: list[str], template, validator) -> list[str]:
    sentinel = next(m for m in markers if m.endswith("ok"))
    swift = swift_side(path, markers, template)
    ours, codes = our_side(path, markers, validator)
    if swift is None or sentinel not in swift:
        return [] if ours is None else ["file: swift's loader fails it, validate reports no file-level error"]
    if ours is None:
        return ["file: validate reports a file-level error, swift loads it"]
    out = []
    for m in markers:
        s, o = swift.get(m), ours.get(m)
        if s is not None and m not in ours:
            out.append(f"row: swift trains it, validate refuses ({','.join(sorted(set(codes.get(m, ['?']))))})")
        elif m in ours and s is None:
            out.append("row: validate accepts it, swift " + ("drops it" if m not in swift else "cannot encode it"))
        elif s is not None and o is not None and s != o:
            out.append("row: token counts differ")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--template", choices=list(TINY), action="append")
    args = ap.parse_args()
    from row_grammar import Grammar
    root = Path(tempfile.mkdtemp(prefix="parity-classes-"))
    os.chdir(root)                                          # cwd-relative images resolve here for both sides
    grammar = Grammar(root, args.seed)
    files = [grammar.file(i) for i in range(args.files)]
    from swift import get_processor, get_template
    from data_tools.tokens import Counter, TilingConfig
    from data_tools.validate import Options, Validator
    from internvl_kit.models import builtin
    for name in args.template or list(TINY):
        ref, max_num, input_size = TINY[name]
        for var, value in (("MAX_NUM", max_num), ("INPUT_SIZE", input_size)):
            os.environ.pop(var, None) if value is None else os.environ.__setitem__(var, str(value))
        model = builtin.resolve(ref)
        template = get_template(get_processor(str(model), download_model=False,
                                              **({"model_type": "internvl"} if name == "internvl_hf" else {})),
                                template_type=name)
        template.set_mode("train")
        validator = Validator(Options(counter=Counter(name, TilingConfig.for_model(model, name, max_num, input_size),
                                                      model)))
        classes, examples = collections.Counter(), {}
        for path, markers in files:
            for c in classify(path, markers, template, validator):
                classes[c] += 1
                examples.setdefault(c, path)
        print(f"# {name}: {len(files)} files, {sum(len(m) for _, m in files)} rows, "
              f"{len({p for p in examples.values()})}+ files in disagreement")
        for c, n in classes.most_common():
            print(f"{n:6}  {c}\n        e.g. {examples[c]}: {examples[c].read_text()[:300]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
