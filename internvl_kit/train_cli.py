"""`python train.py RECIPE [key=value ...]`: recipe -> preflight -> `swift sft`, with progress."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from . import builtin, launch, preflight, run_dir as runs
from .recipe import Recipe, RecipeError, load_recipe
from .swift_cmd import SwiftCommand, sft_command
from .versions import stack_versions

EPILOG = """examples:
  python train.py recipes/tiny-demo.yaml                      # the offline demo (CPU, a few minutes)
  python train.py recipes/tiny-demo.yaml --dry-run            # print the resolved recipe and swift command
  python train.py recipes/tiny-demo.yaml lora_rank=16 freeze_vit=false dataset=[a.jsonl,b.jsonl]
  python train.py recipes/tiny-demo.yaml ~max_steps           # delete a key set by the recipe
  python train.py recipes/tiny-demo.yaml --resume             # continue the latest run from its checkpoint
"""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="train.py", description="Fine-tune InternVL with a recipe through swift sft.",
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", help="recipe YAML (see recipes/)")
    ap.add_argument("overrides", nargs="*", metavar="key=value",
                    help="override recipe keys, typed by recipes/schema.json (dotted keys reach nested ones)")
    ap.add_argument("--dry-run", action="store_true", help="print the recipe and command, start nothing")
    ap.add_argument("--resume", action="store_true",
                    help="continue this recipe's latest run (or --run-dir) from its last checkpoint")
    ap.add_argument("--run-dir", metavar="DIR", help="with --resume: the run directory to continue")
    ap.add_argument("--skip-preflight", action="store_true",
                    help="launch even if the preflight (recipe, files, data_tools validate) finds errors")
    ap.add_argument("-v", "--verbose", action="store_true", help="stream swift's own output")
    return ap


def _resume_target(args: argparse.Namespace, recipe: Recipe, output_dir: str) -> tuple[Path, Path]:
    run = Path(args.run_dir).resolve() if args.run_dir else runs.find_resumable(output_dir, recipe.name)
    if run is None:
        raise SystemExit(f"error: --resume: no run of {recipe.name!r} with a checkpoint under {output_dir}; "
                         f"start one without --resume")
    ckpt = runs.last_checkpoint(run)
    if ckpt is None:
        raise SystemExit(f"error: --resume: {run} has no complete checkpoint (checkpoint-N/trainer_state.json)")
    return run, ckpt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
    try:
        recipe = load_recipe(args.recipe, args.overrides)
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for w in recipe.warnings:
        print(f"warning: {w}", file=sys.stderr)

    try:
        data, pending = builtin.resolve_recipe_refs(recipe.data, materialize=not args.dry_run)
    except ValueError as e:
        print(f"error: {args.recipe}: {e}", file=sys.stderr)
        return 1
    output_dir = data.get("output_dir", "output")
    findings = preflight.run(data, args.recipe, recipe.knobs, pending)
    for f in findings:
        print(f, file=sys.stderr)
    if any(f.severity == "error" for f in findings):
        if not args.skip_preflight:
            print("error: preflight failed; fix the above (or pass --skip-preflight to launch anyway)",
                  file=sys.stderr)
            return 1
        print("warning: --skip-preflight: launching despite preflight errors", file=sys.stderr)

    resume_from = None
    if args.resume:
        run_dir, resume_from = _resume_target(args, recipe, output_dir)
    else:
        run_dir = runs.new_run_dir(output_dir, recipe.name, data.get("add_version", True))
    cmd = sft_command(recipe, data, run_dir, resume_from)

    print(f"# recipe {args.recipe}" + (f" (via {' <- '.join(p.name for p in recipe.chain[:-1])})"
                                        if len(recipe.chain) > 1 else ""))
    print(yaml.safe_dump(recipe.data, sort_keys=False, allow_unicode=True).rstrip())
    print(f"# run directory: {run_dir}")
    print(f"# command:\n{cmd.shell()}")
    if args.dry_run:
        return 0

    _record(run_dir, recipe, args, cmd, resume_from)
    stamp = lambda: [runs.stamp_checkpoint(run_dir, c) for c in runs.checkpoints(run_dir)]  # noqa: E731
    code = launch.run(cmd, run_dir, verbose=args.verbose, on_poll=stamp)
    if code == 0:
        print(f"[ok]    run directory: {run_dir}")
        last = runs.last_checkpoint(run_dir)
        if last:
            print(f"[ok]    last checkpoint: {last}")
    elif code == 130:
        print(f"[stop]  resume with: python train.py {args.recipe} --resume --run-dir {run_dir}")
    return code


def _record(run_dir: Path, recipe: Recipe, args: argparse.Namespace, cmd: SwiftCommand,
            resume_from: Path | None) -> None:
    previous = runs.read_record(run_dir) if resume_from else None
    record = {
        "recipe_name": recipe.name,
        "recipe_file": str(Path(args.recipe).resolve()),
        "recipe_chain": [str(p) for p in recipe.chain],
        "overrides": recipe.overrides,
        "recipe": recipe.data,
        "model": cmd.args[cmd.args.index("--model") + 1],
        "model_type": recipe.data["model_type"],
        "template": recipe.data["template"],
        "internvl": recipe.knobs,
        "env": cmd.env,
        "swift_args": cmd.args,
        "command": cmd.shell(),
        "versions": stack_versions(),
        "created": (previous or {}).get("created", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
        "resumed": (previous or {}).get("resumed", []) + ([{"from": str(resume_from),
                                                            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}]
                                                          if resume_from else []),
    }
    runs.write_record(run_dir, record, recipe.data, cmd.shell())
