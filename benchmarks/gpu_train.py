"""Memory and throughput of a recipe at real size: a random model with the recipe model's real dimensions,
synthetic data shaped like its task, and the official flags against faster variants.

    python benchmarks/gpu_train.py recipes/internvl3_5-8b-latex-ocr.yaml [--steps 30] [--variant seed,batch4]
    python benchmarks/gpu_train.py recipes/internvl3_5-8b-latex-ocr.yaml --scale tiny    # same path, CPU

Memory and speed depend on shapes, not on trained values, so a randomly initialised model of the real
dimensions (from the family table, built directly in bf16 on the GPU with the toolkit's InternVLChatModel
code) measures both honestly. Each variant is an overlay of recipe keys on the recipe: same data, same
steps, same effective batch. train.py runs each one as a user would; one table is printed: samples/s,
tokens/s, torch's peak allocated and reserved GPU memory, the --estimate for the same settings and its
error. `--scale tiny` runs the same code path on CPU with the toolkit's tiny models (memory columns n/a);
tests/test_gpu_bench.py runs it so the script cannot rot.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MEMORY_PLUGIN = Path(__file__).with_name("memory_plugin.py")
# Overlays on the recipe, each the same data, steps and effective batch (per-device batch x accumulation).
VARIANTS: dict[str, dict] = {
    "seed": {"why": "the recipe's own (official guide) flags", "set": []},
    "sdpa": {"why": "torch's fused attention in the LLM", "set": ["attn_impl=sdpa"]},
    "eager": {"why": "plain attention, for reference", "set": ["attn_impl=eager"]},
    "batch2": {"why": "2 samples per step, half the accumulation", "batch": 2},
    "batch4": {"why": "4 samples per step, a quarter of the accumulation", "batch": 4},
    "padding_free": {"why": "batch 4 without padding (flash attention)", "batch": 4,
                     "set": ["padding_free=true", "attn_impl=flash_attn"], "needs": "flash_attn"},
    "packing": {"why": "samples packed into max_length sequences (flash attention)",
                "set": ["packing=true", "attn_impl=flash_attn"], "needs": "flash_attn"},
    "liger": {"why": "Liger kernels (fused RMSNorm, RoPE, SwiGLU, cross-entropy)", "set": ["use_liger_kernel=true"],
              "needs": "liger_kernel"},
}
CPU_SETTINGS = ["torch_dtype=float32", "fp16=false", "bf16=false", "check_model=false", "dataloader_num_workers=0"]
TINY_FOR = {"internvl3_5": "builtin:tiny-internvl3_5", "internvl2_5": "builtin:tiny-internvl3",
            "internvl_hf": "builtin:tiny-internvl-hf"}
FORMULAS = [r"\frac{a}{b}", r"x^{2}+y^{2}=z^{2}", r"\sum_{i=1}^{n} i", r"\sqrt{x}", r"\alpha+\beta",
            r"\int_{0}^{1} f(x) dx", r"e^{i\pi}+1=0", r"\left( a \right)", r"\mathrm{d}x"]


# ---------------------------------------------------------------------------------------- the model
def build_real(row, out: Path) -> Path:
    """A random model of the table's real dimensions, built in bf16 on the GPU, saved like a checkpoint."""
    import torch

    from internvl_kit.models.remote_code.configuration_internvl_chat import InternVLChatConfig
    from internvl_kit.models.remote_code.modeling_internvl_chat import LLM_CLASSES, InternVLChatModel
    from internvl_kit.models.tiny_model import AUTO_MAP, REMOTE_CODE, REMOTE_FILES, build_tokenizer

    spec, tower = row.spec, row.spec.vision
    if spec.arch not in LLM_CLASSES:
        raise SystemExit(f"error: {row.id}: its LLM ({spec.arch}) is not built at real size here; dense Qwen2 / "
                         f"Qwen3 models are ({', '.join(LLM_CLASSES)})")
    tokenizer = build_tokenizer()
    config = InternVLChatConfig(
        vision_config=dict(architectures=["InternVisionModel"], hidden_size=tower.hidden, num_hidden_layers=tower.layers,
                           num_attention_heads=tower.heads, intermediate_size=tower.intermediate, image_size=448,
                           patch_size=14, norm_type=tower.norm, qk_normalization=tower.qk_norm, drop_path_rate=0.0),
        llm_config=dict(architectures=[spec.arch], vocab_size=spec.vocab, hidden_size=spec.hidden,
                        intermediate_size=spec.intermediate, num_hidden_layers=spec.layers,
                        num_attention_heads=spec.heads, num_key_value_heads=spec.kv_heads, head_dim=spec.head_dim,
                        tie_word_embeddings=spec.tie, max_position_embeddings=32768, rope_theta=1e6,
                        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>")),
        force_image_size=448, downsample_ratio=0.5, template="internvl2_5", ps_version="v2", select_layer=-1,
        dynamic_image_size=True, use_thumbnail=True, max_dynamic_patch=12, architectures=["InternVLChatModel"],
        tie_word_embeddings=spec.tie)
    config.auto_map = dict(AUTO_MAP)
    start = time.perf_counter()
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = InternVLChatModel(config)
    torch.set_default_dtype(torch.float32)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    for name in REMOTE_FILES:
        shutil.copyfile(REMOTE_CODE / name, out / name)
    params = sum(p.numel() for p in model.parameters()) / 1e9
    del model
    torch.cuda.empty_cache()
    print(f"[model] random {row.id} shape: {params:.2f}B parameters, built and saved in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    return out


# ----------------------------------------------------------------------------------------- the data
def write_data(out: Path, task: str, n: int, seed: int = 0) -> Path:
    """LaTeX-OCR-like formula strips, or document pages (the tile-heavy case)."""
    from PIL import Image, ImageDraw
    rng = random.Random(seed)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        if task == "latex":
            answer = " ".join(rng.choice(FORMULAS) for _ in range(rng.randint(1, 4)))
            size = (rng.randint(300, 900), rng.randint(40, 120))
            prompt = "<image>Using LaTeX to perform OCR on the image."
        else:
            answer = " ".join(rng.choice(FORMULAS + ["the", "image", "shows", "text"]) for _ in range(60))
            size = (rng.choice((1240, 1654)), rng.choice((1754, 2339)))
            prompt = "<image>Transcribe the page."
        img = Image.new("RGB", size, "white")
        ImageDraw.Draw(img).text((10, 10), answer[:200], fill="black")
        path = images / f"{i:05d}.png"
        img.save(path)
        rows.append({"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
                     "images": [str(path)]})
    data = out / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


def mean_tokens(data: Path, model_dir: Path, template: str, max_num: int, input_size: int | None) -> float:
    """Tokens per sample as swift's template counts them (the toolkit's exact preflight)."""
    from data_tools.images import read_header
    from data_tools.tokens import Counter, TilingConfig
    counter = Counter(template, TilingConfig.for_model(model_dir, template, max_num, input_size), model_dir)
    rows = [json.loads(x) for x in data.read_text().splitlines()]
    sizes = [[(info.width, info.height) for info in map(read_header, r["images"])] for r in rows]
    totals = [counter.total(r["messages"], s) for r, s in zip(rows, sizes)]
    return sum(totals) / len(totals)


# ------------------------------------------------------------------------------------------ the runs
def variant_overrides(name: str, recipe_data: dict) -> list[str] | str:
    """The recipe keys a variant sets, or the reason it cannot run here."""
    import importlib.util
    v = VARIANTS[name]
    if v.get("needs") and importlib.util.find_spec(v["needs"]) is None:
        return f"{v['needs']} is not installed"
    sets = list(v.get("set", []))
    if v.get("batch"):
        effective = int(recipe_data.get("per_device_train_batch_size", 1)) * int(
            recipe_data.get("gradient_accumulation_steps", 16))
        if effective % v["batch"]:
            return f"effective batch {effective} is not a multiple of {v['batch']}"
        sets += [f"per_device_train_batch_size={v['batch']}", f"gradient_accumulation_steps={effective // v['batch']}"]
    return sets


def run_variant(recipe: str, name: str, base: list[str], work: Path, gpu: bool) -> dict:
    from internvl_kit.recipe import load_recipe
    over = variant_overrides(name, load_recipe(ROOT / recipe, base).data)
    if isinstance(over, str):
        return {"variant": name, "skipped": over}
    out = work / f"run-{name}"
    memory_file = work / f"memory-{name}.json"
    args = [sys.executable, str(ROOT / "train.py"), recipe, *base, *over, f"output_dir={out}"]
    if gpu:
        args.append(f"external_plugins=[{MEMORY_PLUGIN}]")
    env = {**os.environ, "INTERNVL_BENCH_MEMORY": str(memory_file)}
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        return {"variant": name, "failed": f"exit {proc.returncode}: {' | '.join(tail)[-300:]}"}
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    rows = [json.loads(x) for x in (run / "logging.jsonl").read_text().splitlines() if x.strip()]
    final = next(r for r in reversed(rows) if "train_samples_per_second" in r)
    result = {"variant": name, "samples_per_s": final["train_samples_per_second"], "wall_s": wall,
              "overrides": over}
    if memory_file.is_file():
        result.update(json.loads(memory_file.read_text()))
    return result


def estimate_gib(recipe: str, base: list[str], name: str) -> float | None:
    from internvl_kit.models import family, memory
    from internvl_kit.recipe import load_recipe
    data = load_recipe(ROOT / recipe, base).data
    over = variant_overrides(name, data)
    if isinstance(over, str):
        return None
    data = load_recipe(ROOT / recipe, base + over).data
    row = family.find(data["model"]) or family.find(load_recipe(ROOT / recipe).data["model"])
    return memory.estimate(row.spec, memory.Setup.from_recipe(data)).total if row else None


def table(results: list[dict], tokens: float, estimates: dict[str, float | None], header: str) -> str:
    lines = [header, f"{'variant':14} {'samples/s':>10} {'tokens/s':>10} {'max alloc GiB':>14} {'max reserved GiB':>17} "
                     f"{'estimate GiB':>13} {'est. error':>10}"]
    for r in results:
        if "samples_per_s" not in r:
            lines.append(f"{r['variant']:14} {r.get('skipped') or r.get('failed')}")
            continue
        alloc, reserved = r.get("max_allocated_gib"), r.get("max_reserved_gib")
        est = estimates.get(r["variant"])
        err = f"{100 * (est / reserved - 1):+.0f}%" if est and reserved else "n/a"
        lines.append(f"{r['variant']:14} {r['samples_per_s']:10.2f} {r['samples_per_s'] * tokens:10.0f} "
                     f"{f'{alloc:.1f}' if alloc else 'n/a':>14} {f'{reserved:.1f}' if reserved else 'n/a':>17} "
                     f"{f'{est:.1f}' if est else 'n/a':>13} {err:>10}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recipe")
    ap.add_argument("--steps", type=int, help="optimizer steps per variant (default: 30 at real scale, 3 tiny)")
    ap.add_argument("--variant", default="seed,sdpa,batch4,padding_free,liger",
                    help=f"comma-separated: {', '.join(VARIANTS)}")
    ap.add_argument("--scale", choices=("real", "tiny"), default="real")
    ap.add_argument("--task", choices=("latex", "pages"), help="synthetic data (default: latex for LaTeX OCR "
                                                                "recipes, pages otherwise)")
    ap.add_argument("--work", type=Path, help="where model, data and runs go (default: a temp dir, removed)")
    args = ap.parse_args(argv)
    from internvl_kit.models import family
    from internvl_kit.recipe import RecipeError, load_recipe
    names = [v for v in args.variant.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    try:
        recipe = load_recipe(ROOT / args.recipe if not Path(args.recipe).is_absolute() else args.recipe)
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    row = family.find(recipe.data["model"])
    if row is None:
        print(f"error: {recipe.data['model']} is not in the model table: no real dimensions", file=sys.stderr)
        return 1
    args.steps = args.steps or (30 if args.scale == "real" else 3)
    task = args.task or ("latex" if "latex" in Path(args.recipe).name else "pages")
    gpu = args.scale == "real"
    if gpu:
        import torch
        if not torch.cuda.is_available():
            print("error: --scale real needs a GPU (use --scale tiny for the CPU path)", file=sys.stderr)
            return 1
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        batch = int(recipe.data.get("per_device_train_batch_size", 1)) * int(
            recipe.data.get("gradient_accumulation_steps", 16))
        data = write_data(work / "data", task, n=batch * args.steps)
        base = [f"dataset=[{data}]", "~val_dataset", "split_dataset_ratio=0", f"max_steps={args.steps}",
                "save_strategy=no", "eval_strategy=no", "report_to=[none]", "logging_steps=1"]
        if "val_dataset" not in recipe.data:
            base.remove("~val_dataset")
        input_size = None
        if gpu:
            model_dir = build_real(row, work / "model")
            base.append(f"model={model_dir}")
        else:
            from internvl_kit.models import builtin
            tiny = TINY_FOR[recipe.data["template"]]
            model_dir = builtin.resolve(tiny)
            base += [f"model={tiny}", "max_length=4096", *CPU_SETTINGS]
            if recipe.data["template"] != "internvl_hf":
                base.append("internvl.input_size=56")
                input_size = 56
        resolved = load_recipe(ROOT / args.recipe, base).data
        tokens = mean_tokens(data, model_dir, resolved["template"], int(resolved.get("internvl", {}).get("max_num", 12)),
                             input_size)
        results, estimates = [], {}
        for name in names:
            print(f"[bench] {name}: {VARIANTS[name]['why']} ...", flush=True)
            results.append(run_variant(args.recipe, name, base, work, gpu))
            estimates[name] = estimate_gib(args.recipe, base, name) if gpu else None
        device = "CPU (tiny model; memory n/a)"
        if gpu:
            import torch
            device = torch.cuda.get_device_name(0)
        import swift
        import transformers
        header = (f"# {args.recipe} at {args.scale} scale ({row.id} shape), {task} data, {args.steps} steps x "
                  f"{batch} samples, {tokens:.0f} tokens/sample; {device}; swift {swift.__version__}, "
                  f"transformers {transformers.__version__}, {time.strftime('%Y-%m-%d')}")
        print(table(results, tokens, estimates, header))
        (work / "results.json").write_text(json.dumps({"header": header, "results": results, "estimates": estimates,
                                                       "tokens_per_sample": tokens}, indent=2))
        return 0 if all("samples_per_s" in r or "skipped" in r for r in results) else 1
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
