"""`python infer.py CHECKPOINT ...`: predictions and metrics, before/after comparison, one-off answers, chat."""
from __future__ import annotations

import argparse
import gc
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError, CheckpointInfo, load
from ..fileio import atomic_write_text

EXIT_ROWS_FAILED = 3        # predictions written for the rows that ran; some rows could not run

EPILOG = """examples:
  python infer.py output/tiny-demo/<run>                         # score the rows swift held out in training
  python infer.py output/tiny-demo/<run>/checkpoint-180 --dataset val.jsonl --compare-base
  python infer.py RUN --dataset AI-ModelScope/LaTeX_OCR@test:human_handwrite    # one split of a hub dataset
  python infer.py output/tiny-demo/<run> --image shape.png --prompt "What shape is this?"
  python infer.py output/tiny-demo/<run> --interactive          # /image PATH, /reset, /quit
  python infer.py CHECKPOINT --dry-run                           # what would be loaded, with which settings
  python infer.py output/tiny-demo/<run> --serve --port 8000     # OpenAI-compatible API at http://127.0.0.1:8000/v1

exit status: 0 every row ran; 1 error (nothing predicted); 2 bad usage; 3 some rows could not run (too
long for max_length, an image that does not open): the others were predicted, the failed ones are
recorded in the output with their line and reason.
"""


def build_parser() -> argparse.ArgumentParser:
    from .predict import BACKENDS
    ap = argparse.ArgumentParser(prog="infer.py", description="Predict with a fine-tuned InternVL checkpoint.",
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="checkpoint-N/ dir, a run dir (its last checkpoint) or a merged model dir")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--dataset", help="messages/images JSONL, or a hub dataset as a recipe names it (ID@SPLIT "
                                        "for one split: ID@test:subset); the last assistant turn is the reference. "
                                        "Default: the rows the run held out (split_dataset_ratio or val_dataset)")
    mode.add_argument("--image", type=Path, help="one image to ask about (with --prompt)")
    mode.add_argument("--interactive", action="store_true", help="multi-turn chat in the terminal")
    mode.add_argument("--serve", action="store_true",
                      help="serve an OpenAI-compatible API (swift deploy) with the run's settings, until Ctrl-C")
    ap.add_argument("--prompt", help="the question for --image (or a text-only question on its own)")
    ap.add_argument("--compare-base", action="store_true", help="also run the base model (and, for a chained run, "
                                                                  "the SFT checkpoint it started from) and compare metrics")
    ap.add_argument("--backend", choices=BACKENDS, default="transformers")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("-o", "--output", type=Path, help="predictions JSONL (default: CHECKPOINT/infer/<dataset>.jsonl)")
    ap.add_argument("--draw", type=Path, metavar="DIR", help="grounding rows: draw each image with its reference "
                                                            "(green) and predicted (magenta) boxes into DIR, misses first")
    ap.add_argument("--draw-limit", type=int, default=50, help="at most this many images for --draw (default 50)")
    ap.add_argument("--dry-run", action="store_true", help="print the model, adapter and settings; load nothing")
    serve = ap.add_argument_group("--serve")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--media-dir", help="directory requests may name local images from (default: anywhere "
                                           "on a loopback host, nowhere otherwise)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        info = load(args.checkpoint)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for w in info.warnings:
        print(f"warning: {w}", file=sys.stderr)
    adapter = str(info.path) if info.kind == "adapter" else None
    _describe(info, adapter, args)
    if args.backend == "vllm" and adapter and _lora_touches_vision(info):
        print("warning: this LoRA trains the vision tower or projector, but vllm applies LoRA to the language "
              "model only; merge first (python export.py CHECKPOINT --merge) and infer the merged directory",
              file=sys.stderr)
    if args.dry_run:
        if args.serve:
            from .serve import deploy_command
            print(f"# serve:      {deploy_command(info, adapter, args.host, args.port, args.media_dir).shell()}")
        return 0
    try:
        if args.interactive:
            return _interactive(info, adapter, args)
        if args.serve:
            from .serve import serve
            return serve(info, adapter, args.host, args.port, args.media_dir)
        if args.prompt:
            return _single(info, adapter, args)
        if args.image:
            print("error: --image needs --prompt (the question to ask about it)", file=sys.stderr)
            return 2
        from ..train.preflight import local_dataset_path
        if args.dataset and local_dataset_path(args.dataset) is not None:
            return _dataset(info, adapter, args, Path(args.dataset), str(Path(args.dataset).resolve()))
        if info.record is None and not args.dataset:
            print("error: give --dataset, --image with --prompt, --prompt, or --interactive (held-out rows are "
                  "known only for runs train.py started)", file=sys.stderr)
            return 2
        from . import heldout
        path, source = heldout.rows(info, args.dataset)
        return _dataset(info, adapter, args, path, source)
    except _InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


class _InputError(Exception):
    pass


def _describe(info: CheckpointInfo, adapter: str | None, args: argparse.Namespace) -> None:
    env = " ".join(f"{k}={v}" for k, v in sorted(info.env.items())) or "(swift defaults)"
    print(f"# model:      {info.base_model}" + (f"\n# adapter:    {adapter}" if adapter else " (merged)"))
    print(f"# template:   {info.template} (model_type {info.model_type}); max_length {info.max_length}")
    print(f"# env:        {env}" + ("  [+ -HF max_num plugin]" if info.template == "internvl_hf"
                                    and "max_num" in info.knobs else ""))
    print(f"# backend:    {args.backend}")


def _lora_touches_vision(info: CheckpointInfo) -> bool:
    recipe = info.recipe or {}
    targets = " ".join(map(str, info.adapter_config.get("target_modules") or []))
    return (recipe.get("freeze_vit") is False or recipe.get("freeze_aligner") is False
            or any(k in targets for k in ("vision", "mlp1", "multi_modal_projector")))


def _check_images(paths: list[str], where: str) -> None:
    from data_tools.images import ImageError, read_header
    for p in paths:
        try:
            read_header(p)
        except (ImageError, OSError) as e:
            raise _InputError(f"{where}: image {p!r} does not open: {getattr(e, 'strerror', None) or e}") from None


def _predictor(info: CheckpointInfo, model: str, adapter: str | None, args: argparse.Namespace):
    import time
    start = time.perf_counter()
    print(f"[load]  {Path(model).name}{' + adapter' if adapter else ''} through swift ({args.backend}) ...",
          file=sys.stderr, flush=True)
    from .predict import BackendError, Predictor
    try:
        predictor = Predictor(info, model=model, adapter=adapter, backend=args.backend,
                              max_new_tokens=args.max_new_tokens)
    except BackendError as e:
        raise _InputError(str(e)) from None
    print(f"[load]  ready in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return predictor


@dataclass
class _Row:
    line: int
    row: dict[str, Any] | None          # None when the line is not a usable messages row
    error: str | None = None
    sizes: list[tuple[int, int]] = field(default_factory=list)    # the images' stored sizes (as swift reads them)

    @property
    def objects(self) -> dict[str, Any] | None:
        from data_tools.grounding import objects_of
        objects = objects_of(self.row) if self.row else None
        return objects if isinstance(objects, dict) else None

    def request(self) -> tuple[list[dict[str, Any]], list[str], dict[str, Any] | None, list[str]]:
        return self.row["messages"][:-1], self.row["images"], self.objects, self.row.get("videos") or []

    @property
    def reference(self) -> str:
        """The answer to score against, its <ref-object>/<bbox> written as swift writes them in training."""
        messages = self.row["messages"]
        if self.objects is None:
            return messages[-1]["content"]
        from data_tools.grounding import render
        return render(messages, self.objects, self.sizes)[-1]["content"]


def _read_dataset(path: Path) -> list[_Row]:
    """Every non-blank line, each usable or with the reason it cannot run (the run goes on without it)."""
    from data_tools.images import ImageError, read_header
    if not path.is_file():
        raise _InputError(f"{path}: no such file")
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                rows.append(_Row(n, None, f"invalid JSON ({e.msg} at column {e.colno})"))
                continue
            try:
                msgs = row["messages"]
                assert isinstance(msgs, list) and len(msgs) >= 2 and msgs[-1]["role"] == "assistant"
            except (KeyError, TypeError, AssertionError):
                rows.append(_Row(n, None, "not a messages row ending with the assistant's reference answer (check "
                                          f"it with python -m data_tools validate {path})"))
                continue
            images = row.get("images") or []
            row["images"] = [images] if isinstance(images, str) else images
            videos = row.get("videos") or []
            if videos:
                row["videos"] = [videos] if isinstance(videos, str) else videos
            bad, sizes = _video_problem(row.get("videos") or []), []
            for p in row["images"] if bad is None else ():
                try:
                    info = read_header(p)
                    sizes.append((info.width, info.height))
                except (ImageError, OSError) as e:
                    bad = f"image {p!r} does not open: {getattr(e, 'strerror', None) or e}"
                    break
            rows.append(_Row(n, row, bad, sizes))
    if not rows:
        raise _InputError(f"{path}: no rows")
    return rows


def _video_problem(videos: list[str]) -> str | None:
    from data_tools.video import VideoError, read_header
    for v in videos:
        try:
            read_header(v)
        except VideoError as e:
            return f"video {v!r}: {e}"
    return None


def _dataset(info: CheckpointInfo, adapter: str | None, args: argparse.Namespace, dataset: Path, source: str) -> int:
    from .metrics import score
    rows = _read_dataset(dataset)
    columns: dict[str, dict[int, Any]] = {}
    runs = []
    if args.compare_base:
        runs.append(("base", info.trained_from, None))
        start = info.recipe_adapter("adapters")
        if start is not None:        # a chained run: also the model it started from (a preference run: its SFT)
            runs.append(("sft" if (info.recipe or {}).get("rlhf_type") else "start", info.trained_from, str(start)))
    runs.append(("tuned", info.base_model, adapter))
    for name, model, adapter_path in runs:
        predictor = _predictor(info, model, adapter_path, args)
        for r in rows:
            if r.error is None:
                r.error = predictor.problem(*r.request())
        good = [r for r in rows if r.error is None]
        print(f"[infer] {name}: {len(good)} samples ...", flush=True)
        answers = predictor.answer([r.request() for r in good], progress=True)
        columns[name] = {r.line: a for r, a in zip(good, answers)}
        del predictor
        gc.collect()
    failed = [r for r in rows if r.error is not None]
    for r in failed:
        print(f"[skip]  {dataset}:{r.line}: {r.error}", file=sys.stderr)
    stem = dataset.stem if dataset.name != "rows.jsonl" else dataset.parent.name
    out = args.output or info.path / "infer" / f"{stem}.jsonl"
    lines = []
    for r in rows:
        if r.error is not None:
            rec = dict(r.row or {}, line=r.line, error=r.error)
        else:
            tuned = columns["tuned"][r.line]
            rec = dict(r.row, line=r.line, prediction=tuned.text, prompt_tokens=tuned.prompt_tokens)
            if r.objects is not None:        # the boxes on the 0-1000 grid, as the predictions write them
                rec["reference"] = r.reference
            for name in columns.keys() - {"tuned"}:
                rec[f"prediction_{name}"] = columns[name][r.line].text
        lines.append(json.dumps(rec, ensure_ascii=False))
    atomic_write_text(out, "\n".join(lines) + "\n")
    scored = [r for r in rows if r.error is None]
    refs = [r.reference for r in scored]
    metrics = {name: score([col[r.line].text for r in scored], refs) for name, col in columns.items()}
    report = {"checkpoint": str(info.path), "dataset": source, "predictions": str(Path(out).resolve()), "metrics": metrics,
              "failed_rows": [{"line": r.line, "error": r.error} for r in failed],
              "settings": {"template": info.template, "max_length": info.max_length, "env": info.env,
                           "max_new_tokens": args.max_new_tokens, "backend": args.backend}}
    metrics_path = out.with_suffix(".metrics.json")
    atomic_write_text(metrics_path, json.dumps(report, indent=2) + "\n")
    beside = info.path / "infer" / f"{stem}.metrics.json"
    # -o elsewhere: a training checkpoint keeps a copy for its model card (an export dir is published as it
    # is, and the report holds local paths)
    if info.kind == "adapter" and not info.export and beside.resolve() != metrics_path.resolve():
        try:
            atomic_write_text(beside, json.dumps(report, indent=2) + "\n")
        except OSError as e:
            print(f"warning: the metrics are not recorded in {beside.parent} ({e.strerror or e}): export.py's "
                  f"model card will not show them", file=sys.stderr)
    _print_table(metrics)
    print(f"[ok]    predictions: {out}\n[ok]    metrics:     {metrics_path}")
    if args.draw:
        drawn = _draw(scored, columns["tuned"], args.draw, args.draw_limit)
        print(f"[ok]    drawn:       {drawn} image(s) in {args.draw}" if drawn else
              "[draw]  no row has boxes in its reference: nothing drawn")
    _refresh_report(info)
    if failed:
        print(f"error: {len(failed)} of {len(rows)} row(s) could not run (see [skip] above; recorded with their "
              f"reason in {out.name}); the metrics cover the {len(scored)} that ran", file=sys.stderr)
        return EXIT_ROWS_FAILED
    return 0


def _draw(rows: list[_Row], answers: dict[int, Any], out: Path, limit: int) -> int:
    """Each grounding row's first image with the reference and the predicted boxes, the misses first."""
    from data_tools.grounding import PREDICTED, REFERENCE, draw
    from . import boxes
    scored = [(boxes.row_score(answers[r.line].text, r.reference), r) for r in rows if r.sizes]
    scored = [(s, r) for s, r in scored if s is not None]
    good = lambda s: s["hit"] if s["kind"] == "referring" else s["matched"] == s["reference"]  # noqa: E731
    scored.sort(key=lambda sr: (good(sr[0]), sr[1].line))
    for s, r in scored[:limit]:
        width, height = r.sizes[0]
        shapes = [(b.label or "", b.pixels(width, height), PREDICTED) for b in boxes.parse(answers[r.line].text)]
        shapes += [(b.label or "", b.pixels(width, height), REFERENCE) for b in boxes.parse(r.reference)]  # on top
        draw(r.row["images"][0], shapes, out / f"line-{r.line}.png")
    return min(limit, len(scored))


def _refresh_report(info: CheckpointInfo) -> None:
    """A checkpoint of a train.py run: its run's report.html now shows these scores and predictions."""
    run_dir = info.path.parent
    if info.kind != "adapter" or info.export or not (run_dir / "run.json").is_file():
        return
    from ..train.run_report import refresh
    path, why = refresh(run_dir, ended=False)          # a checkpoint may be scored while its run goes on
    if path is not None:
        print(f"[ok]    report:      {path}")
    else:
        print(f"warning: the run report was not refreshed: {why}", file=sys.stderr)


def _print_table(metrics: dict[str, dict[str, Any]]) -> None:
    names = ["exact_match", "normalized_exact_match", "cer", "chrf", "bleu"]
    names += [k for k in ("mean_iou", "acc_at_0.5", "precision_at_0.5", "recall_at_0.5") if k in metrics["tuned"]]
    cols = [c for c in ("base", "tuned") if c in metrics]
    if not all(metrics[c].get("samples") for c in cols):
        print("metrics: no row ran")
        return
    print(f"{'metric':24}" + "".join(f"{c:>10}" for c in cols) + ("      diff" if len(cols) == 2 else ""))
    for m in names:
        vals = [metrics[c][m] for c in cols]
        if any(v is None for v in vals):
            print(f"{m:24}{'n/a':>10}  (references average {metrics[cols[-1]]['reference_words']:.1f} words; "
                  f"BLEU needs sentences, read chrF)")
            continue
        diff = f"{vals[1] - vals[0]:+10.3f}" if len(vals) == 2 else ""
        print(f"{m:24}" + "".join(f"{v:10.3f}" for v in vals) + diff)
    print(f"{'samples':24}" + "".join(f"{metrics[c]['samples']:10d}" for c in cols))


def _single(info: CheckpointInfo, adapter: str | None, args: argparse.Namespace) -> int:
    images = [str(args.image)] if args.image else []
    _check_images(images, "--image")
    prompt = args.prompt if not images or "<image>" in args.prompt else info.image_tag * len(images) + args.prompt
    predictor = _predictor(info, info.base_model, adapter, args)
    messages = [{"role": "user", "content": prompt}]
    problem = predictor.problem(messages, images)
    if problem:
        raise _InputError(f"--prompt cannot run: {problem}")
    print(predictor.answer([(messages, images)])[0].text)
    return 0


def _interactive(info: CheckpointInfo, adapter: str | None, args: argparse.Namespace) -> int:
    predictor = _predictor(info, info.base_model, adapter, args)
    print("chat: type a message; /image PATH attaches an image to the next message; /reset; /quit", flush=True)
    messages: list[dict[str, str]] = []
    images: list[str] = []
    pending: list[str] = []
    prompt = "you> " if sys.stdin.isatty() else ""       # a prompt for a person, none in a pipe's output
    while True:
        try:
            line = input(prompt)
        except EOFError:
            break
        if not line.strip():
            continue
        if line.strip() in ("/quit", "/exit"):
            break
        if line.strip() == "/reset":
            messages, images, pending = [], [], []
            print("(history cleared)", flush=True)
            continue
        if line.startswith("/image "):
            path = line[len("/image "):].strip()
            try:
                _check_images([path], "/image")
            except _InputError as e:
                print(f"error: {e}", flush=True)
                continue
            pending.append(path)
            print(f"(image attached: {path})", flush=True)
            continue
        content = info.image_tag * len(pending) + line         # as the training rows wrote it
        images, pending = images + pending, []
        messages.append({"role": "user", "content": content})
        reply = predictor.answer([(messages, images)])[0].text
        messages.append({"role": "assistant", "content": reply})
        print(f"assistant: {reply}", flush=True)
    return 0
