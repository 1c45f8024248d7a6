"""`python train.py RECIPE [key=value ...]`: recipe -> preflight -> `swift sft`, with progress."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from . import builtin, launch, preflight, run_dir as runs
from .recipe import Recipe, RecipeError, load_recipe
from .swift_cmd import SwiftCommand, launch_env, sft_command
from .versions import stack_versions

EPILOG = """examples:
  python train.py recipes/tiny-demo.yaml                      # the offline demo (CPU, a few minutes)
  python train.py recipes/tiny-demo.yaml --dry-run            # print the resolved recipe and swift command
  python train.py recipes/tiny-demo.yaml lora_rank=16 freeze_vit=false dataset=[a.jsonl,b.jsonl]
  python train.py recipes/tiny-demo.yaml ~max_steps           # delete a key set by the recipe
  python train.py recipes/tiny-demo.yaml --resume             # continue the latest run from its checkpoint
  python train.py recipes/internvl3_5-8b-latex-ocr.yaml model=OpenGVLab/InternVL3_5-8B-HF --dry-run
                                                              # the -HF route: the model picks model_type/template
"""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="train.py", description="Fine-tune InternVL with a recipe through swift sft.",
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", nargs="?", help="recipe YAML (see recipes/ or --list)")
    ap.add_argument("overrides", nargs="*", metavar="key=value",
                    help="override recipe keys, typed by recipes/schema.json (dotted keys reach nested ones)")
    ap.add_argument("--dry-run", action="store_true", help="print the recipe and command, start nothing")
    ap.add_argument("--resume", action="store_true",
                    help="continue this recipe's latest run (or --run-dir) from its last checkpoint")
    ap.add_argument("--run-dir", metavar="DIR", help="with --resume: the run directory to continue")
    ap.add_argument("--skip-preflight", action="store_true",
                    help="launch even if the preflight (recipe, files, data_tools validate) finds errors")
    ap.add_argument("-v", "--verbose", action="store_true", help="stream swift's own output")
    scale = ap.add_argument_group("memory and scale")
    scale.add_argument("--list", action="store_true", help="print the recipe catalogue (model, GPUs, memory)")
    scale.add_argument("--markdown", action="store_true", help="with --list: as the README's markdown table")
    scale.add_argument("--estimate", action="store_true", help="print the per-GPU memory estimate and stop")
    scale.add_argument("--gpus", type=int, help="with --estimate: GPUs in total (default: the recipe's)")
    scale.add_argument("--gpu-memory", type=float, default=None, metavar="GiB",
                       help="with --estimate: memory per GPU (default 74.5, an 80 GB card)")
    scale.add_argument("--node-rank", type=int, help="this node's rank, for recipes with nnodes > 1")
    scale.add_argument("--master-addr", help="rank 0's address, for recipes with nnodes > 1")
    scale.add_argument("--master-port", type=int, help="rendezvous port (default: 29500, or a free one on one node)")
    scale.add_argument("--model-parallel", action="store_true",
                       help="allow several visible GPUs with nproc_per_node=1 (swift's naive model parallelism)")
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
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    if args.list:
        from . import catalogue
        print(catalogue.markdown() if args.markdown else catalogue.text())
        return 0
    if not args.recipe:
        parser.error("a recipe is required (or --list)")
    try:
        recipe = load_recipe(args.recipe, args.overrides)
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for w in recipe.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.estimate:
        return _estimate(recipe, args)

    try:
        data, pending = builtin.resolve_recipe_refs(recipe.data, materialize=not args.dry_run)
    except ValueError as e:
        print(f"error: {args.recipe}: {e}", file=sys.stderr)
        return 1
    output_dir = data.get("output_dir", "output")
    findings = preflight.run(data, args.recipe, recipe.knobs, pending, model_parallel=args.model_parallel)
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
    launch_vars = launch_env(data, args.node_rank, args.master_addr, args.master_port)
    cmd = sft_command(recipe, data, run_dir, resume_from, launch_vars)
    if int(data.get("nnodes", 1)) > 1 and args.node_rank is None:
        return _print_node_commands(args, int(data["nnodes"]), cmd)

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


def _estimate(recipe: Recipe, args: argparse.Namespace) -> int:
    from . import family, memory
    from .catalogue import DEFAULT_GPU_GIB
    row = family.find(recipe.data["model"])
    if row is None:
        print(f"error: {recipe.data['model']!r} is not in the model table (python -m internvl_kit.family): "
              f"no dimensions to estimate from", file=sys.stderr)
        return 1
    gpu = args.gpu_memory if args.gpu_memory is not None else DEFAULT_GPU_GIB
    est = memory.estimate(row.spec, memory.Setup.from_recipe(recipe.data, args.gpus), gpu)
    print(f"# {row.id}: {row.spec.total_params_b:g}B parameters ({row.spec.vision.name} + {row.spec.llm})")
    print(est.render())
    return 0 if est.fits else 1


def _print_node_commands(args: argparse.Namespace, nnodes: int, cmd: SwiftCommand) -> int:
    addr = args.master_addr or "<rank-0 address>"
    port = args.master_port or 29500
    extra = " ".join(args.overrides)
    print(f"# {nnodes} nodes: run on each node (same recipe, same data paths), node 0 first:")
    for rank in range(nnodes):
        print(f"python train.py {args.recipe} {extra + ' ' if extra else ''}--node-rank {rank} "
              f"--master-addr {addr} --master-port {port}")
    print("# each runs: " + cmd.shell().replace("NODE_RANK=0", "NODE_RANK=<rank>"))
    return 0


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
