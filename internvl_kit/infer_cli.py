"""`python infer.py CHECKPOINT ...`: predictions and metrics, before/after comparison, one-off answers, chat."""
from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError, CheckpointInfo, load
from .fileio import atomic_write_text

EPILOG = """examples:
  python infer.py output/tiny-demo/<run>/checkpoint-180 --dataset val.jsonl --compare-base
  python infer.py output/tiny-demo/<run> --image shape.png --prompt "What shape is this?"
  python infer.py output/tiny-demo/<run> --interactive          # /image PATH, /reset, /quit
  python infer.py CHECKPOINT --dry-run                           # what would be loaded, with which settings
"""


def build_parser() -> argparse.ArgumentParser:
    from .predict import BACKENDS
    ap = argparse.ArgumentParser(prog="infer.py", description="Predict with a fine-tuned InternVL checkpoint.",
                                 epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="checkpoint-N/ dir, a run dir (its last checkpoint) or a merged model dir")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--dataset", type=Path, help="messages/images JSONL; the last assistant turn is the reference")
    mode.add_argument("--image", type=Path, help="one image to ask about (with --prompt)")
    mode.add_argument("--interactive", action="store_true", help="multi-turn chat in the terminal")
    ap.add_argument("--prompt", help="the question for --image (or a text-only question on its own)")
    ap.add_argument("--compare-base", action="store_true", help="also run the base model and compare metrics")
    ap.add_argument("--backend", choices=BACKENDS, default="transformers")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("-o", "--output", type=Path, help="predictions JSONL (default: CHECKPOINT/infer/<dataset>.jsonl)")
    ap.add_argument("--dry-run", action="store_true", help="print the model, adapter and settings; load nothing")
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
        return 0
    try:
        if args.dataset:
            return _dataset(info, adapter, args)
        if args.interactive:
            return _interactive(info, adapter, args)
        if args.prompt:
            return _single(info, adapter, args)
    except _InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("error: give --dataset, --image with --prompt, --prompt, or --interactive", file=sys.stderr)
    return 2


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
    from .predict import BackendError, Predictor
    try:
        return Predictor(info, model=model, adapter=adapter, backend=args.backend,
                         max_new_tokens=args.max_new_tokens)
    except BackendError as e:
        raise _InputError(str(e)) from None


def _read_dataset(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise _InputError(f"{path}: no such file")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            msgs = row["messages"]
            assert msgs and msgs[-1]["role"] == "assistant" and len(msgs) >= 2
        except (ValueError, KeyError, TypeError, AssertionError):
            raise _InputError(f"{path}:{n}: not a messages row ending with the assistant's reference answer "
                              f"(check it with python -m data_tools validate {path})") from None
        images = row.get("images") or []
        row["images"] = [images] if isinstance(images, str) else images
        _check_images(row["images"], f"{path}:{n}")
        rows.append((n, row))
    if not rows:
        raise _InputError(f"{path}: no rows")
    return rows


def _dataset(info: CheckpointInfo, adapter: str | None, args: argparse.Namespace) -> int:
    from .metrics import score
    rows = _read_dataset(args.dataset)
    batch = [(row["messages"][:-1], row["images"]) for _, row in rows]
    refs = [row["messages"][-1]["content"] for _, row in rows]
    columns: dict[str, list] = {}
    runs = ([("base", info.trained_from, None)] if args.compare_base else []) + [("tuned", info.base_model, adapter)]
    for name, model, adapter_path in runs:
        print(f"[infer] {name}: {len(batch)} samples ...", flush=True)
        predictor = _predictor(info, model, adapter_path, args)
        columns[name] = predictor.answer(batch, progress=True)
        del predictor
        gc.collect()
    out = args.output or info.path / "infer" / f"{args.dataset.stem}.jsonl"
    lines = []
    for i, (_, row) in enumerate(rows):
        rec = dict(row, prediction=columns["tuned"][i].text, prompt_tokens=columns["tuned"][i].prompt_tokens)
        if "base" in columns:
            rec["prediction_base"] = columns["base"][i].text
        lines.append(json.dumps(rec, ensure_ascii=False))
    atomic_write_text(out, "\n".join(lines) + "\n")
    metrics = {name: score([a.text for a in answers], refs) for name, answers in columns.items()}
    report = {"checkpoint": str(info.path), "dataset": str(args.dataset.resolve()), "metrics": metrics,
              "settings": {"template": info.template, "max_length": info.max_length, "env": info.env,
                           "max_new_tokens": args.max_new_tokens, "backend": args.backend}}
    metrics_path = out.with_suffix(".metrics.json")
    atomic_write_text(metrics_path, json.dumps(report, indent=2) + "\n")
    _print_table(metrics)
    print(f"[ok]    predictions: {out}\n[ok]    metrics:     {metrics_path}")
    return 0


def _print_table(metrics: dict[str, dict[str, Any]]) -> None:
    names = ["exact_match", "normalized_exact_match", "cer", "bleu"]
    cols = [c for c in ("base", "tuned") if c in metrics]
    print(f"{'metric':24}" + "".join(f"{c:>10}" for c in cols) + ("      diff" if len(cols) == 2 else ""))
    for m in names:
        vals = [metrics[c][m] for c in cols]
        diff = f"{vals[1] - vals[0]:+10.3f}" if len(vals) == 2 else ""
        print(f"{m:24}" + "".join(f"{v:10.3f}" for v in vals) + diff)
    print(f"{'samples':24}" + "".join(f"{metrics[c]['samples']:10d}" for c in cols))


def _single(info: CheckpointInfo, adapter: str | None, args: argparse.Namespace) -> int:
    images = [str(args.image)] if args.image else []
    _check_images(images, "--image")
    prompt = args.prompt if not images or "<image>" in args.prompt else "<image>" + args.prompt
    answer = _predictor(info, info.base_model, adapter, args).answer([([{"role": "user", "content": prompt}],
                                                                       images)])[0]
    print(answer.text)
    return 0


def _interactive(info: CheckpointInfo, adapter: str | None, args: argparse.Namespace) -> int:
    predictor = _predictor(info, info.base_model, adapter, args)
    print("chat: type a message; /image PATH attaches an image to the next message; /reset; /quit", flush=True)
    messages: list[dict[str, str]] = []
    images: list[str] = []
    pending: list[str] = []
    for line in sys.stdin:
        line = line.rstrip("\n")
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
        content = "<image>" * len(pending) + line
        images, pending = images + pending, []
        messages.append({"role": "user", "content": content})
        reply = predictor.answer([(messages, images)])[0].text
        messages.append({"role": "assistant", "content": reply})
        print(f"assistant: {reply}", flush=True)
    return 0
