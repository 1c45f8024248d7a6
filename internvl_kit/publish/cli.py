"""`python export.py CHECKPOINT [--merge] [--push OWNER/NAME]`: a publishable directory, proven, with a card."""
from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from ..infer.checkpoint import CheckpointError, load
from ..fileio import atomic_write_text, replace_dir
from .hub import TOKEN_ENV, PushError, push, read_token
from .merge_proof import PROOFS

EPILOG = f"""hub token:
  The ModelScope token is read from the environment variable {TOKEN_ENV} (or from --token-file FILE),
  never from the command line; it does not appear in output, logs, saved args, the model card or the
  pushed files.

examples:
  python export.py output/tiny-demo/<run>                         # publishable adapter dir + model card
  python export.py output/tiny-demo/<run> --merge                 # merged model, proven against base+adapter
  {TOKEN_ENV}=... python export.py output/<run> --merge --push my-org/my-model --private
"""
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="export.py", description="Merge, document and publish a fine-tuned InternVL.",
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="checkpoint-N/ dir, a run dir (its last checkpoint), or an export dir to push "
                                       "as it is")
    ap.add_argument("--merge", action="store_true", help="merge LoRA into the base weights (swift export), then prove it")
    ap.add_argument("-o", "--output", type=Path, help="export dir (default: CHECKPOINT-merged or CHECKPOINT-adapter)")
    ap.add_argument("--force", action="store_true", help="replace an existing export dir (after the new one is proven)")
    ap.add_argument("--proof", choices=PROOFS, default="auto",
                    help="how the merge is proven: weights (streamed tensor by tensor, any size), logits (probe "
                         "image through base+adapter and merged), auto (weights, plus logits when they fit in RAM)")
    ap.add_argument("--push", metavar="OWNER/NAME", help="push the export dir to this ModelScope model repo")
    ap.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps its visibility)")
    ap.add_argument("--prune", action="store_true",
                    help="after the push, delete remote files that are not part of this export (listed otherwise)")
    ap.add_argument("--commit-message", default="Upload fine-tuned InternVL (internvl-kit)")
    ap.add_argument("--token-file", type=Path, help=f"file holding the token, when {TOKEN_ENV} is not set")
    return ap


def main(argv: list[str] | None = None) -> int:
    from ..train.supervise import stop_signals
    args = build_parser().parse_args(argv)
    try:
        with stop_signals():        # from the first step: a SIGTERM must not find the default handler (exit -15)
            return _run(args)
    except (CheckpointError, PushError, _ExportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:       # Ctrl-C, or SIGTERM/SIGHUP (stop_signals turns them into this)
        print("interrupted: any merge child was stopped; an export directory is only ever complete or absent and "
              "a push lands whole or not at all, so run the same command again", file=sys.stderr)
        return 130


class _ExportError(Exception):
    pass


def _describe_proof(p: dict) -> str:
    if p.get("skipped"):
        return f"{p['proof']}: skipped ({p['skipped']})"
    if p["proof"] == "weights":
        return (f"weights: {p['lora_targets']} LoRA target(s) = base + scaling * B @ A (worst element at "
                f"{p['worst_vs_tolerance']:.2g} of the dtype tolerance), {p['replaced']} replaced, "
                f"{p['unchanged']} other tensor(s) byte-equal to the base")
    reference = (f"; vs its reference {p['reference']} {p['max_abs_diff_vs_reference']:.2e} (the policy, not the "
                 f"reference)" if "reference" in p else "")
    return (f"logits: merged vs base+adapter max |diff| {p['max_abs_diff_vs_base_plus_adapter']:.2e} "
            f"(tolerance {p['tolerance']:.1e}); vs base {p['max_abs_diff_vs_base']:.2e} (the adapter is in){reference}")


def _run(args: argparse.Namespace) -> int:
    from . import model_card, export_dir
    from .merge import MergeError, fresh_dir, run_swift_merge
    from .merge_proof import prove

    info = load(args.checkpoint)
    for w in info.warnings:
        print(f"warning: {w}", file=sys.stderr)
    token = None
    if args.push:                              # fail before the long merge, not after it
        if not REPO_ID.match(args.push):
            raise _ExportError(f"--push {args.push!r}: expected OWNER/NAME")
        token = read_token(args.token_file)
    if args.merge and info.kind != "adapter":
        raise _ExportError(f"{info.path} is already a merged model; drop --merge")
    if info.export and (args.merge or args.output):
        raise _ExportError(f"{info.path} is an {info.export} export, pushed as it is: drop --merge/-o, or export "
                           f"again from its training checkpoint (checkpoint-N/)")
    suffix = "merged" if args.merge else "adapter"
    out = (args.output or info.path.with_name(f"{info.path.name}-{suffix}")).resolve()
    reuse = False
    if info.export or (info.kind == "merged" and not args.output):
        out = info.path
    elif out.exists() and not args.force:
        reuse = bool(args.push) and export_dir.made_from(info, out, suffix)
        if not reuse:
            raise _ExportError(f"{out} exists; pass --force to replace it (never reused: it may be stale)")
        print(f"[push]  {out} is a complete {suffix} export of this very checkpoint (an earlier attempt's): "
              f"pushing it without exporting again (--force rebuilds it)", flush=True)

    if reuse:
        atomic_write_text(out / "README.md", model_card.render(info, merged=args.merge, repo_id=args.push,
                                                               local_name=out.name))
    elif out != info.path:
        tmp = fresh_dir(out)
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            if args.merge:
                print(f"[merge] swift export --merge_lora -> {out}", flush=True)
                run_swift_merge(info, tmp, progress=lambda line: print(line, flush=True))
                for note in export_dir.apply_knobs_to_configs(info, tmp):
                    print(f"[merge] tiling for other engines: {note}")
                for proof in prove(info, tmp, args.proof):
                    print(f"[proof] {_describe_proof(proof)}", flush=True)
            else:
                tmp.mkdir(parents=True)
                export_dir.write_adapter_dir(info, tmp)
            export_dir.write_record(info, tmp, suffix)
            if not args.merge:
                export_dir.write_swift_args(info, tmp)
            atomic_write_text(tmp / "README.md", model_card.render(info, merged=args.merge, repo_id=args.push,
                                                                   local_name=out.name))
            replace_dir(tmp, out)
        except MergeError as e:
            raise _ExportError(str(e)) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"[ok]    {suffix} export: {out}")
    elif args.push:                 # an existing export, pushed as it is: its card names the repo now
        atomic_write_text(out / "README.md", model_card.render(info, merged=info.kind == "merged",
                                                               repo_id=args.push, local_name=out.name))
    if args.push:
        print(f"[push]  {out} -> {args.push} ({'private' if args.private else 'public'} if new)", flush=True)
        progress = lambda note: print(f"[push]  {note}", flush=True)  # noqa: E731
        for note in push(out, args.push, private=args.private, message=args.commit_message, token=token,
                         prune=args.prune, notes=progress):
            progress(note)
        print(f"[ok]    pushed: {args.push}")
    return 0
