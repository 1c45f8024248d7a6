"""`python train.py RECIPE [key=value ...]`: recipe -> preflight -> `swift sft` (or `swift rlhf` for a preference recipe), with progress."""
from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from pathlib import Path

import yaml

from ..models import builtin
from . import launch, preflight, run_dir as runs
from .nodes import Nodes, diagnosis, node_commands
from ..recipe import Recipe, RecipeError, load_recipe
from ..recipe.loader import base_of
from .supervise import say
from .swift_cmd import KNOB_ENV, RDZV_TIMEOUT_S, SwiftCommand, launch_env, train_command
from ..versions import stack_versions

EPILOG = """examples:
  python train.py recipes/tiny-demo.yaml                      # the offline demo (CPU, about a minute)
  python train.py recipes/tiny-demo.yaml --dry-run            # print the resolved recipe and swift command
  python train.py recipes/tiny-demo.yaml lora_rank=16 freeze_vit=false dataset=[a.jsonl,b.jsonl]
  python train.py recipes/tiny-demo.yaml --lora_rank 16 --dry-run   # swift's own flag style works too
  python train.py recipes/tiny-demo.yaml '~max_steps' --dry-run      # delete a key (a no-op if unset)
  python train.py recipes/tiny-demo.yaml --resume             # continue the latest run from its checkpoint
  python train.py recipes/internvl3_5-8b-latex-ocr.yaml --plan  # load the data through swift, print the data plan
  python train.py recipes/internvl3_5-8b-latex-ocr-heldout.yaml # hub data by split: AI-ModelScope/LaTeX_OCR@train
  python train.py --keys lora                                 # every recipe key matching 'lora', with its help
  python train.py recipes/internvl3_5-8b-latex-ocr.yaml model=OpenGVLab/InternVL3_5-8B-HF --dry-run
                                                              # the -HF route: the model picks model_type/template
  python train.py recipes/internvl3_5-241b-a28b-lora.yaml       # 2 nodes: prints each node's command
  python train.py recipes/internvl3_5-241b-a28b-lora.yaml --slurm --partition gpu   # ... or writes the sbatch job

swift's launch variables set in the environment win over the recipe, as in swift (a note says so):
NPROC_PER_NODE, NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT and the tiling MAX_NUM, INPUT_SIZE,
VIDEO_MAX_NUM, VIDEO_SEGMENTS.

exit status: swift's own; 1 for a bad recipe or preflight, 2 for bad usage, 130 after Ctrl-C, 3 when the
run was stopped because the loss stayed NaN/inf (stop_on_nan).
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _rank(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port (1-65535), got {text}")
    return value


def _gib(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of GiB, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="train.py", description="Fine-tune InternVL with a recipe through swift sft (swift rlhf for a preference recipe).",
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", nargs="?", help="recipe YAML (see recipes/ or --list)")
    ap.add_argument("overrides", nargs="*", metavar="key=value",
                    help="override recipe keys, typed by the recipe schema (dotted keys reach nested ones; "
                         "~key deletes; --key value works too)")
    ap.add_argument("--dry-run", action="store_true", help="print the recipe and command, start nothing (instant: "
                                                            "loads no data)")
    ap.add_argument("--plan", action="store_true",
                    help="load the data through swift's loader (hub datasets too), check it and print the data plan "
                         "with the dry-run output; start nothing")
    ap.add_argument("--resume", action="store_true",
                    help="continue this recipe's latest run (or --run-dir) from its last checkpoint, with the "
                         "run's own recorded recipe")
    ap.add_argument("--run-dir", metavar="DIR",
                    help="with --resume: the run directory to continue; otherwise the new run's (every node of a "
                         "multi-node run names the same one)")
    ap.add_argument("--change-world-size", action="store_true",
                    help="with --resume: let NPROC_PER_NODE / NNODES in the environment change the recorded number "
                         "of processes (the effective batch size and data order change with it)")
    ap.add_argument("--skip-preflight", action="store_true",
                    help="launch even if the preflight (recipe, files, data_tools validate) finds errors, and "
                         "without loading the data for the plan (a warning names what was not checked)")
    ap.add_argument("-v", "--verbose", action="store_true", help="stream swift's own output")
    ap.add_argument("--keys", nargs="?", const="", metavar="PATTERN",
                    help="list the recipe keys (all of swift sft's and swift rlhf's, and the toolkit's) matching PATTERN, with help")
    scale = ap.add_argument_group("memory and scale")
    scale.add_argument("--list", action="store_true", help="print the recipe catalogue (model, GPUs, memory)")
    scale.add_argument("--markdown", action="store_true", help="with --list: as the README's markdown table")
    scale.add_argument("--estimate", action="store_true", help="print the per-GPU memory estimate and stop")
    scale.add_argument("--gpus", type=_positive_int, help="with --estimate: GPUs in total (default: the recipe's)")
    scale.add_argument("--gpu-memory", type=_gib, default=None, metavar="GiB",
                       help="with --estimate: memory per GPU (default 74.5, an 80 GB card)")
    scale.add_argument("--node-rank", type=_rank, help="this node's rank, for recipes with nnodes > 1")
    scale.add_argument("--master-addr", help="rank 0's address, for recipes with nnodes > 1")
    scale.add_argument("--master-port", type=_port, help="rendezvous port (default: 29500, or a free one on one node)")
    scale.add_argument("--model-parallel", action="store_true",
                       help="allow several visible GPUs with nproc_per_node=1 (swift's naive model parallelism)")
    job = ap.add_argument_group("cluster job (Slurm)")
    job.add_argument("--slurm", action="store_true",
                     help="write an sbatch script that runs the recipe on its nnodes nodes (with --dry-run: print it)")
    job.add_argument("--partition", help="with --slurm: #SBATCH --partition")
    job.add_argument("--time", help="with --slurm: #SBATCH --time, e.g. 2-00:00:00")
    job.add_argument("--account", help="with --slurm: #SBATCH --account")
    job.add_argument("--sbatch", action="append", default=[], metavar="OPTION",
                     help="with --slurm: one more #SBATCH line, e.g. --sbatch=--qos=high (repeatable)")
    return ap


def _swift_style(argv: list[str], parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """`--lora_rank 16` (swift's habit) -> `lora_rank=16`; `--dataset a b` -> `dataset=[a,b]`."""
    from ..recipe.schema import subschema, takes_list
    own = {opt for action in parser._actions for opt in action.option_strings}
    out, notes, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        key = arg[2:].split("=", 1)[0].replace("-", "_") if arg.startswith("--") else ""
        if not key or arg.split("=", 1)[0] in own or subschema((key,)) is None:
            out.append(arg)
            i += 1
            continue
        if "=" in arg:
            values, i = [arg.split("=", 1)[1]], i + 1
        else:
            values, i = [], i + 1
            while i < len(argv) and not argv[i].startswith("--") and "=" not in argv[i] and \
                    not argv[i].startswith("~") and (not values or takes_list(key)):
                values.append(argv[i])
                i += 1
        if not values:
            raise SystemExit(f"error: {arg} needs a value: write {key}=VALUE")
        value = values[0] if len(values) == 1 and subschema((key,)).get("type") != "array" else \
            "[" + ",".join(values) + "]"
        out.append(f"{key}={value}")
        notes.append(f"read {arg} {' '.join(values) if '=' not in arg else ''}".rstrip() + f" as {key}={value}")
    return out, notes


def _environment_wins(recipe: Recipe) -> list[str]:
    """swift's launch and tiling variables set by the user win over the recipe, as swift does it."""
    from ..recipe.validate import HF_REFUSED_KNOBS
    notes, knobs = [], dict(recipe.knobs)
    for knob, var in KNOB_ENV.items():
        value = os.environ.get(var, "").strip()
        if not value:
            continue
        if recipe.is_hf and knob in HF_REFUSED_KNOBS:
            notes.append(f"{var}={value} in the environment is ignored on the -HF route")
            continue
        try:
            number = int(value)
        except ValueError:
            raise SystemExit(f"error: {var}={value!r} in the environment is not an integer") from None
        problem = _out_of_bounds(number, _knob_schema(knob))
        if problem:
            raise SystemExit(f"error: {var}={number} in the environment: {problem} (as internvl.{knob} in a recipe)")
        if knobs.get(knob) != number:
            notes.append(f"{var}={number} from the environment wins over internvl.{knob}: {knobs.get(knob, 'unset')}")
        knobs[knob] = number
    if knobs:
        recipe.data["internvl"] = knobs
    for var, key, number in _world_env():
        if int(recipe.data.get(key, 1)) != number:
            notes.append(f"{var}={number} from the environment wins over {key}: {recipe.data.get(key, 1)}")
        recipe.data[key] = number
    return notes


def _world_env() -> list[tuple[str, str, int]]:
    """NPROC_PER_NODE / NNODES set in the environment, checked against the schema's bounds of their keys."""
    from ..recipe.schema import schema
    found = []
    for var, key in (("NPROC_PER_NODE", "nproc_per_node"), ("NNODES", "nnodes")):
        value = os.environ.get(var, "").strip()
        if not value:
            continue
        try:
            number = int(value)
        except ValueError:
            raise SystemExit(f"error: {var}={value!r} in the environment is not an integer") from None
        problem = _out_of_bounds(number, schema()["properties"][key])
        if problem:
            raise SystemExit(f"error: {var}={number} in the environment: {problem} (as {key} in a recipe)")
        found.append((var, key, number))
    return found


def _resume_world(recipe: Recipe, args: argparse.Namespace) -> list[str]:
    """A resume keeps the recorded world: another NPROC_PER_NODE / NNODES changes the effective batch size
    and the data order, so it is refused unless --change-world-size says so; tiling variables are ignored."""
    notes = []
    for var, key, number in _world_env():
        recorded = int(recipe.data.get(key, 1))
        if number == recorded:
            continue
        if not args.change_world_size:
            raise SystemExit(f"error: --resume: {var}={number} in the environment, but the run was recorded with "
                             f"{key}={recorded}; another world size changes the effective batch size and the data "
                             f"order. Unset {var} to resume as recorded, or pass --change-world-size")
        notes.append(f"--change-world-size: {key} {recorded} -> {number} ({var}), recorded with this resume")
        recipe.data[key] = number
    for knob, var in KNOB_ENV.items():
        if os.environ.get(var, "").strip() and str(recipe.knobs.get(knob)) != os.environ[var].strip():
            notes.append(f"{var}={os.environ[var].strip()} in the environment is ignored on --resume: the run "
                         f"continues with internvl.{knob}: {recipe.knobs.get(knob, 'unset')} as recorded")
    return notes


def _knob_schema(knob: str) -> dict:
    from ..recipe.schema import schema
    return schema()["properties"]["internvl"]["properties"].get(knob, {})


def _out_of_bounds(number: int, prop: dict) -> str | None:
    """The schema's bounds for a tiling knob, which a value from the environment must meet as a recipe's does."""
    if "minimum" in prop and number < prop["minimum"]:
        return f"must be >= {prop['minimum']}"
    if "maximum" in prop and number > prop["maximum"]:
        return f"must be <= {prop['maximum']}"
    if "multipleOf" in prop and number % prop["multipleOf"]:
        return f"must be a multiple of {prop['multipleOf']}"
    return None


def _resumed_recipe(args: argparse.Namespace) -> tuple[Recipe, Path, Path, dict]:
    """The run to continue, its last checkpoint, and the recipe exactly as the run recorded it."""
    if args.run_dir:
        run = Path(args.run_dir).resolve()
    else:
        located = load_recipe(args.recipe, args.overrides)
        output_dir = builtin.resolve_recipe_refs(located.data, materialize=False)[0].get("output_dir", "output")
        run, others = runs.find_resumable(output_dir, located.name, args.recipe)
        if run is None and others:
            raise SystemExit(f"error: --resume: the run(s) of {located.name!r} under {output_dir} were started from "
                             f"another recipe file ({runs.read_record(others[0]).get('recipe_file')}, run {others[0]}), "
                             f"not {Path(args.recipe).resolve()}; pass --run-dir to continue one of them anyway")
        if run is None:
            raise SystemExit(f"error: --resume: no run of {located.name!r} with a checkpoint under {output_dir}; "
                             f"start one without --resume")
    record = runs.read_record(run)
    if not record or "recipe" not in record:
        raise SystemExit(f"error: --resume: {run} has no run.json with a recorded recipe (was it started by train.py?)")
    shapes = {"recipe": (dict, "a mapping"), "recipe_file": (str, "a path"), "overrides": (list, "a list of strings"),
              "recipe_chain": (list, "a list of strings"), "resumed": (list, "a list")}
    for key, (kind, wanted) in shapes.items():
        value = record.get(key, kind())
        if not isinstance(value, kind) or wanted == "a list of strings" and not all(isinstance(v, str) for v in value):
            raise SystemExit(f"error: --resume: {run / runs.RUN_RECORD} is damaged: {key} is {value!r:.80}, expected "
                             f"{wanted}; restore it, or start a new run")
    ckpt = runs.last_checkpoint(run)
    if ckpt is None:
        raise SystemExit(f"error: --resume: {run} has no complete checkpoint (checkpoint-N/trainer_state.json)")
    state = runs.read_record(ckpt, "trainer_state.json") or {}
    done, total = state.get("global_step"), state.get("max_steps")
    if isinstance(done, int) and isinstance(total, int) and 0 < total <= done:
        raise SystemExit(f"error: --resume: {run} already finished ({done}/{total} steps, {ckpt.name}); "
                         f"resuming would train past its end. Start a new run to train more")
    recipe = Recipe(path=Path(record["recipe_file"]), data=dict(record["recipe"]),
                    overrides=list(record.get("overrides", [])), chain=[Path(p) for p in record.get("recipe_chain", [])])
    # The run's identity is its recorded recipe: the file as it reads now must still give it (keys the
    # environment decided at the start are the record's)
    recorded = list(record.get("overrides", []))
    changes = _differences(recipe.data, load_recipe(args.recipe, recorded).data)
    changed = ", ".join(changes)
    if changed and not args.run_dir:
        raise SystemExit(f"error: --resume: {args.recipe} has changed since {run} started ({changed}); a resume "
                         f"continues the run as recorded. Restore the file, start a new run without --resume, or pass "
                         f"--run-dir {run} to continue it as recorded")
    if changed:
        print(f"warning: --resume --run-dir: continuing {run} as recorded; {args.recipe} now differs ({changed})",
              file=sys.stderr)
    if args.overrides:
        shown = ", ".join(_differences(recipe.data, load_recipe(args.recipe, recorded + args.overrides).data,
                                       set(changes)))
        if shown:
            raise SystemExit(f"error: --resume continues {run} as it was recorded; these overrides change it: "
                             f"{shown}. Drop them, or start a new run without --resume")
    return recipe, run, ckpt, record


ENV_DECIDED = ("internvl", "nproc_per_node", "nnodes")     # the environment may have set these at the start


def _differences(recorded: dict, fresh: dict, already: set[str] = frozenset()) -> list[str]:
    """`key: recorded -> fresh` for each key that differs (keys the environment decides aside), minus those
    already reported."""
    keys = sorted(k for k in set(fresh) | set(recorded) if k not in ENV_DECIDED and fresh.get(k) != recorded.get(k))
    parts = [f"{k}: {recorded.get(k)!r} -> {fresh.get(k)!r}" for k in keys]
    return [p for p in parts if p not in already]


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:            # `train.py --list | head`: the reader left; nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: list[str]) -> int:
    parser = build_parser()
    argv, notes = _swift_style(argv, parser)
    args = parser.parse_intermixed_args(argv)
    if args.keys is not None:
        return _print_keys(args.keys)
    if args.list:
        from ..recipe import catalogue
        print(catalogue.markdown() if args.markdown else catalogue.text())
        return 0
    if not args.recipe:
        parser.error("a recipe is required (or --list, --keys)")
    if args.slurm and (args.resume or args.node_rank is not None):
        parser.error("--slurm writes the job for every node (and resumes by itself when resubmitted): drop "
                     + ("--resume" if args.resume else "--node-rank"))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    record = None
    try:
        if args.resume:
            recipe, run_dir, resume_from, record = _resumed_recipe(args)
        else:
            recipe = load_recipe(args.recipe, args.overrides)
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for w in recipe.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.estimate:
        return _estimate(recipe, args)
    for note in _resume_world(recipe, args) if args.resume else _environment_wins(recipe):
        print(f"note: {note}", file=sys.stderr)
    nodes = Nodes.of(int(recipe.data.get("nnodes", 1)), args.node_rank, args.master_addr, args.master_port)
    error = nodes.problem(bool(args.run_dir), launching=not (args.dry_run or args.plan or args.slurm))
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    try:
        data, pending = builtin.resolve_recipe_refs(recipe.data, materialize=not args.dry_run or args.plan)
    except ValueError as e:
        print(f"error: {args.recipe}: {e}", file=sys.stderr)
        return 1
    findings = preflight.run(data, args.recipe, recipe.knobs, pending, model_parallel=args.model_parallel)
    for f in findings:
        print(f, file=sys.stderr)
    if any(f.severity == "error" for f in findings):
        if args.slurm:
            print("warning: --slurm: the preflight found the errors above here; every node runs it again when the "
                  "job starts and stops on them, so fix them before submitting", file=sys.stderr)
        elif not args.skip_preflight:
            print("error: preflight failed; fix the above (or pass --skip-preflight to launch anyway)",
                  file=sys.stderr)
            return 1
        else:
            print("warning: --skip-preflight: launching despite preflight errors", file=sys.stderr)
    if not args.resume:
        resume_from = None
        run_dir = Path(args.run_dir).resolve() if args.run_dir else \
            runs.new_run_dir(data.get("output_dir", "output"), recipe.name, data.get("add_version", True))
        if nodes.lead and ((run_dir / runs.RUN_RECORD).exists() or runs.checkpoints(run_dir)):
            why = "--run-dir" if args.run_dir else "add_version is false and output_dir"
            print(f"error: {why} {run_dir} already holds a run (run.json or checkpoints): a new run would "
                  f"overwrite its record; continue it with `--resume --run-dir {run_dir}`, or choose another "
                  f"directory", file=sys.stderr)
            return 1
    plan = None
    if not args.resume and nodes.lead and not args.slurm and (args.plan or args.skip_preflight or not args.dry_run):
        plan, code = _data_plan(data, recipe, args)
        if code:
            return code
    args.dry_run = args.dry_run or args.plan
    if nodes.port is not None and not 1 <= nodes.port <= 65535:
        print(f"error: MASTER_PORT={nodes.port} in the environment must be a TCP port (1-65535)", file=sys.stderr)
        return 2
    cmd = train_command(recipe, data, run_dir, resume_from, launch_env(data, nodes.rank, nodes.addr, nodes.port))
    if args.slurm:
        return _slurm(args, recipe, data, run_dir, nodes)
    if nodes.several and nodes.rank is None:
        print("\n".join(node_commands(args.recipe, args.overrides, run_dir, nodes, cmd.shell())))
        return 0

    print(f"# recipe {args.recipe}" + (f" (via {' <- '.join(p.name for p in recipe.chain[:-1])})"
                                        if len(recipe.chain) > 1 else ""))
    print(yaml.safe_dump(recipe.data, sort_keys=False, allow_unicode=True).rstrip())
    print(f"# run directory: {run_dir}")
    print(f"# command:\n{cmd.shell()}")
    if args.dry_run:
        if plan is None and (data.get("dataset") or data.get("val_dataset")):
            print("# data plan: made at launch, or now with --plan (it loads the data through swift)")
        return 0

    if nodes.lead:                  # node N > 0 writes only its log: the record is node 0's
        try:
            _record(run_dir, recipe, args, cmd, resume_from, record, plan)
        except OSError as e:
            print(f"error: cannot write the run directory {run_dir}: {e.strerror or e}", file=sys.stderr)
            return 1
    stamp = lambda: [runs.stamp_checkpoint(run_dir, c) for c in runs.checkpoints(run_dir)]  # noqa: E731
    code = launch.run(cmd, run_dir, verbose=args.verbose, on_poll=stamp if nodes.lead else None,
                      stop_on_nan=int(recipe.data.get("stop_on_nan", 3)), log_name=nodes.log_name,
                      explain=lambda tail: diagnosis(tail, nodes, int(data.get("rdzv_timeout", RDZV_TIMEOUT_S))))
    resume = f"python train.py {shlex.quote(args.recipe)} --resume --run-dir {shlex.quote(str(run_dir))}"
    if nodes.several:
        resume = f"{resume} {shlex.join(nodes.argv(nodes.rank or 0))} (on every node, each with its own --node-rank)"
    if code == 0:
        say(f"[ok]    run directory: {run_dir}")
        last = runs.last_checkpoint(run_dir)
        if last:
            say(f"[ok]    last checkpoint: {last}")
    elif runs.last_checkpoint(run_dir) is not None and code != launch.EXIT_NAN:
        if not say(f"[stop]  resume with: {resume}"):      # stdout's reader left: the terminal still hears it
            say(f"[stop]  resume with: {resume}", file=sys.stderr)
    if nodes.lead and code != launch.EXIT_INTERRUPTED:     # curves up to a failure are worth a look too
        _report(run_dir)
    return code


def _report(run_dir: Path) -> None:
    from .run_report import refresh
    path, why = refresh(run_dir)
    if path is not None:
        say(f"[ok]    report: {path} (open it in a browser; rebuild any time: python -m internvl_kit.report "
            f"{shlex.quote(str(run_dir))})")
    else:
        say(f"warning: the run report was not written: {why}", file=sys.stderr)


def _data_plan(data: dict, recipe: Recipe, args: argparse.Namespace):
    """(plan, 0), or (None, exit code) when the data cannot be loaded or has errors; None, 0 when skipped."""
    entries = [str(e) for k in ("dataset", "val_dataset") for e in data.get(k) or []]
    if not entries:
        return None, 0
    if args.skip_preflight:
        hub = [e for e in entries if preflight.local_dataset_path(e) is None]
        what = f"dataset(s) {', '.join(hub)} not loaded or checked" if hub else "the rows not loaded through swift"
        print(f"warning: --skip-preflight: {what}; no data plan (held-out counts, repeats, leaks unknown)",
              file=sys.stderr)
        return None, 0
    from . import data_plan, swift_data
    try:
        plan, findings = data_plan.make(data, recipe.knobs, args.recipe)
    except (swift_data.DataLoadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return None, 1
    for f in findings:
        print(f, file=sys.stderr)
    if any(f.severity == "error" for f in findings):
        print("error: preflight failed on the loaded rows; fix the above (or pass --skip-preflight to launch anyway)",
              file=sys.stderr)
        return None, 1
    print(data_plan.render(plan), flush=True)
    for w in plan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return plan, 0


def _print_keys(pattern: str) -> int:
    from ..recipe.schema import schema
    props = schema()["properties"]
    shown = 0
    for key, sub in props.items():
        if pattern.lower() not in key.lower():
            continue
        kind = sub.get("type") or ("one of " + ", ".join(map(str, sub["enum"])) if "enum" in sub else "any")
        default = f" (default {sub['default']!r})" if "default" in sub else ""
        where = "toolkit" if sub.get("x-swift") is False else "swift rlhf only" if sub.get("x-command") else "swift"
        print(f"{key}  [{kind if isinstance(kind, str) else '/'.join(kind)}; {where}]{default}")
        if sub.get("description"):
            print(f"    {sub['description']}")
        shown += 1
    if not shown:
        print(f"no recipe key matches {pattern!r}", file=sys.stderr)
        return 1
    return 0


def _estimate(recipe: Recipe, args: argparse.Namespace) -> int:
    from ..models import family, memory
    from ..recipe.catalogue import DEFAULT_GPU_GIB
    row = family.find(recipe.data["model"])
    if row is None:
        print(f"error: {recipe.data['model']!r} is not in the model table (python -m internvl_kit.models.family): "
              f"no dimensions to estimate from", file=sys.stderr)
        return 1
    gpu = args.gpu_memory if args.gpu_memory is not None else DEFAULT_GPU_GIB
    est = memory.estimate(row.spec, memory.Setup.from_recipe(recipe.data, args.gpus), gpu)
    print(f"# {row.id}: {row.spec.total_params_b:g}B parameters ({row.spec.vision.name} + {row.spec.llm})")
    print(est.render())
    return 0 if est.fits else 1


def _slurm(args: argparse.Namespace, recipe: Recipe, data: dict, run_dir: Path, nodes: Nodes) -> int:
    """Write (or with --dry-run print) the sbatch script that runs this recipe on its nodes."""
    from ..fileio import atomic_write_text
    from .slurm import JobOptions, script
    text = script(args.recipe, args.overrides, run_dir, nodes.count, int(data.get("nproc_per_node", 1)), recipe.name,
                  JobOptions(args.partition, args.time, args.account, args.sbatch), args.master_port)
    if args.dry_run:
        print(text, end="")
        return 0
    path = run_dir / "job.sbatch"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)             # sbatch needs --output's directory to exist
        atomic_write_text(path, text)
        path.chmod(0o755)
    except OSError as e:
        print(f"error: cannot write {path}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"# wrote {path} ({nodes.count} nodes x {int(data.get('nproc_per_node', 1))} GPUs)")
    print(f"sbatch {shlex.quote(str(path))}")
    return 0


def _lineage(data: dict) -> dict | None:
    """The checkpoints a chained run starts from (adapters) and is measured against (ref_adapters, a
    preference run's reference), each with the toolkit run that wrote it when there is one."""
    out = {}
    for key in ("adapters", "ref_adapters"):
        links = []
        for path in data.get(key) or []:
            ckpt = Path(path).resolve()
            parent = runs.read_record(ckpt.parent) if ckpt.parent.is_dir() else None
            links.append({"checkpoint": str(ckpt), "run_dir": str(ckpt.parent) if parent else None,
                          "recipe_name": (parent or {}).get("recipe_name")})
        if links:
            out[key] = links
    return out or None


def _record(run_dir: Path, recipe: Recipe, args: argparse.Namespace, cmd: SwiftCommand,
            resume_from: Path | None, previous: dict | None, plan=None) -> None:
    """A new run writes its record; a resume only appends to the record's history."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if resume_from is not None and previous is not None:
        entry = {"from": str(resume_from), "at": now, "command": cmd.shell(exact=True), "env": cmd.env,
                 "nproc_per_node": int(recipe.data.get("nproc_per_node", 1)), "nnodes": int(recipe.data.get("nnodes", 1))}
        runs.append_resume(run_dir, entry)
        return
    record = {
        "recipe_name": recipe.name,
        "recipe_file": str(Path(args.recipe).resolve()),
        "recipe_chain": [str(p) for p in recipe.chain],
        "overrides": recipe.overrides,
        "recipe": recipe.data,
        "recipe_base": base_of(args.recipe),
        "model": cmd.args[cmd.args.index("--model") + 1],
        "model_type": recipe.data["model_type"],
        "template": recipe.data["template"],
        "internvl": recipe.knobs,
        "env": cmd.env,
        "swift_command": cmd.subcommand,
        "swift_args": cmd.args,
        "command": cmd.shell(exact=True),
        "chained_from": _lineage(recipe.data),
        "versions": stack_versions(),
        "data_plan": plan.as_dict() if plan is not None else None,
        "created": now,
        "resumed": [],
    }
    runs.write_record(run_dir, record, recipe.data, cmd.shell(exact=True))
