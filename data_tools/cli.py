"""`python -m data_tools COMMAND`: validate, convert, stats, split. No torch or swift is imported."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

EPILOG = """examples:
  python -m data_tools validate data/train.jsonl --recipe recipes/tiny-demo.yaml
  python -m data_tools validate data/*.jsonl --max-length 4096 --max-num 6 --deep --json
  python -m data_tools convert --from llava raw.json -o data/train.jsonl
  python -m data_tools stats data/train.jsonl --recipe recipes/tiny-demo.yaml --plot lengths.png
  python -m data_tools split data/all.jsonl --val 0.05 --seed 0 -o data/
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", help="take max_length, tile limit, model and template from a recipe")
    p.add_argument("--max-length", type=int, help="token limit per sample (default: the recipe's)")
    p.add_argument("--max-num", type=int, help="max tiles per image (default: recipe / model / 12)")
    p.add_argument("--model", help="model id or dir whose tokenizer counts text tokens")
    p.add_argument("--template", help="swift template: internvl_hf, internvl2_5, internvl3_5 (default)")
    p.add_argument("--tokenizer", help="directory with tokenizer.json (exact counts without the model)")
    p.add_argument("--image-root", help="also resolve relative image paths here (swift's ROOT_IMAGE_DIR)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m data_tools", description=__doc__.split(":")[0],
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check JSONL files before training (exit 1 on errors)")
    v.add_argument("files", nargs="*", type=Path, help="JSONL files (default: the recipe's datasets)")
    _common(v)
    v.add_argument("--deep", action="store_true", help="decode every image fully (catches truncated files)")
    v.add_argument("--strict", action="store_true", help="treat warnings as errors")
    v.add_argument("--no-tokens", action="store_true", help="skip the token-length preflight")
    v.add_argument("--json", action="store_true", help="print one JSON report instead of lines")
    v.add_argument("--report", type=Path, metavar="ROWS.jsonl",
                   help="write one JSON line per row: file, line, verdict, error/warning codes, image sizes, "
                        "tokens (text / template / image / total) and tiles per image")

    c = sub.add_parser("convert", help="convert llava/sharegpt/internvl/alpaca/csv/tsv/hf to messages JSONL, "
                                       "preference pairs (pairs: question/chosen/rejected rows, RLAIF-V's too; mmpr: "
                                       "InternVL's MMPR meta JSON) to swift's rejected_response rows, and detection "
                                       "data (coco, refcoco, odvg) to grounding rows")
    c.add_argument("input", type=Path)
    c.add_argument("--from", dest="fmt", required=True,
                   choices=["llava", "sharegpt", "internvl", "alpaca", "csv", "tsv", "hf", "pairs", "mmpr",
                            "coco", "refcoco", "odvg"])
    c.add_argument("-o", "--output", type=Path, required=True)
    c.add_argument("--image-root", type=Path, help="directory relative image paths are under "
                                                   "(default: the input file's directory)")
    c.add_argument("--relative-to", type=Path, help="write image paths relative to this directory "
                                                    "(default: absolute)")
    c.add_argument("--image-column", default="image", help="csv/tsv/hf: column with the image")
    c.add_argument("--text-column", "--answer-column", dest="text_column", default="text",
                   help="csv/tsv/hf: column with the answer")
    c.add_argument("--question-column", help="csv/tsv/hf: column with each row's question")
    c.add_argument("--rejected-column", help="csv/tsv/hf: column with a worse answer, for a preference pair "
                                             "(RLAIF-V: --text-column chosen --rejected-column rejected)")
    c.add_argument("--prompt", help="csv/tsv/hf: one question for every row (instead of --question-column); "
                                    "coco/refcoco/odvg: the question instead of the default (keep its <ref-object> "
                                    "where there is one)")
    c.add_argument("--per", choices=["image", "category"], default="image",
                   help="coco: one row per image (every object), or per image and category")
    c.add_argument("--instances", type=Path, help="refcoco: the COCO instances JSON its refs point into")
    c.add_argument("--split", help="refcoco: only the refs of this split (train, val, testA, testB)")
    c.add_argument("--meta-relative", action="store_true",
                   help="internvl/mmpr: resolve a meta file's relative root/annotation against its own folder "
                        "(InternVL's convention, the default, is the current directory)")
    c.add_argument("--images-dir", type=Path, help="hf: where embedded images are written "
                                                   "(default: OUTPUT_images/)")

    s = sub.add_parser("stats", help="samples, turns, tiles and token-length percentiles")
    s.add_argument("files", nargs="+", type=Path)
    _common(s)
    s.add_argument("--plot", type=Path, help="write a token-length histogram PNG with the max_length line")
    s.add_argument("--draw", type=int, metavar="N", help="draw the boxes of N sampled grounding rows on their "
                                                         "images, as swift reads them (into --draw-dir)")
    s.add_argument("--draw-dir", type=Path, help="where --draw writes (default: ./<first file>-boxes)")
    s.add_argument("--json", action="store_true")

    sp = sub.add_parser("split", help="deterministic train/val split; rows sharing an image stay together")
    sp.add_argument("file", type=Path)
    sp.add_argument("--val", required=True, help="fraction (0.05) or count (500) of rows for validation")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("-o", "--output-dir", type=Path, required=True)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .context import UsageError
    try:
        if args.command == "validate":
            return cmd_validate(args)
        if args.command == "convert":
            from .convert import run as convert_run
            return convert_run(args)
        if args.command == "stats":
            from .stats import run as stats_run
            return stats_run(args)
        from .split import run as split_run
        return split_run(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def cmd_validate(args: argparse.Namespace) -> int:
    from . import context
    from .validate import CODES, ERRORS, Report, Validator

    setup = context.build(args.recipe, max_length=args.max_length, max_num=args.max_num, model=args.model,
                          template=args.template, tokenizer=args.tokenizer, image_root=args.image_root,
                          deep=args.deep, tokens=not args.no_tokens)
    files = args.files or setup.files
    if not files:
        raise context.UsageError("no files to validate: name JSONL files or a --recipe with local datasets")
    report, issues = Report(), []
    sink = issues.append if args.json else (lambda i: print(i, flush=False))
    v = Validator(dataclasses.replace(setup.options, breakdown=args.report is not None))
    if args.report is None:
        for f in files:
            v.validate_file(f, report, sink)
    else:
        write_rows(v, files, report, sink, args.report, setup.options)
    failed = report.errors > 0 or (args.strict and report.warnings > 0)
    lengths = sorted(report.lengths)
    if args.json:
        print(json.dumps({"files": [str(f) for f in files], "samples": report.samples, "errors": report.errors,
                          "warnings": report.warnings, "counts": dict(report.counts), "tokens": setup.note,
                          "max_tokens": lengths[-1] if lengths else None, "ok": not failed,
                          "issues": [i.as_dict() for i in issues]}, ensure_ascii=False))
        return 1 if failed else 0
    print(f"summary: {report.samples} samples in {len(files)} file(s): {report.errors} error(s), "
          f"{report.warnings} warning(s){' (--strict: warnings fail)' if args.strict else ''}")
    for code, n in sorted(report.counts.items(), key=lambda kv: (kv[0] not in ERRORS, kv[0])):
        print(f"  {'error' if code in ERRORS else 'warning':7} {code:14} {n:7}  {CODES[code]}")
    print(f"  {setup.note}")
    if lengths:
        print(f"  longest sample {lengths[-1]} tokens; median {lengths[len(lengths) // 2]}")
    return 1 if failed else 0


def write_rows(v, files: list[Path], report, sink, out: Path, options) -> None:
    """validate with a per-row record streamed to `out` (written atomically: complete or absent). Each file's
    records are spooled first: what swift's loader does with the whole file is known only at its end, and
    then marks its rows (`loaded: false` where the file fails or the row is dropped for its format)."""
    import shutil
    import tempfile

    import orjson

    from .fileio import atomic_open
    from .report import record
    if any(out.resolve() == f.resolve() for f in files):
        from .context import UsageError
        raise UsageError(f"--report {out} is one of the input files; inputs are never written")
    with atomic_open(out) as fh:
        for f in files:
            with tempfile.TemporaryFile() as spool:
                verdict = v.validate_file(f, report, sink, on_row=lambda n, codes, sample, _f=f: spool.write(
                    orjson.dumps(record(_f, n, codes, sample, options.counter, options.max_num)) + b"\n"))
                spool.seek(0)
                if verdict.loads and not verdict.late:
                    shutil.copyfileobj(spool, fh)
                    continue
                objects: dict[int, int] = {}
                for raw in spool:
                    rec = orjson.loads(raw)
                    where = (rec["line"], objects.get(rec["line"], 0))
                    objects[rec["line"]] = where[1] + 1
                    late = (["file"] if not verdict.loads else []) + verdict.late.get(where, [])
                    rec["errors"] = sorted(set(rec["errors"]) | set(late))
                    rec["verdict"] = "error" if rec["errors"] else rec["verdict"]
                    rec["loaded"] = verdict.loads and where not in verdict.dropped
                    fh.write(orjson.dumps(rec) + b"\n")
