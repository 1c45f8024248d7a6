"""What an exported directory carries: the run record without local paths, the knobs applied to the
model's own configs, and a model card. Shared by the adapter and the merged export."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from .checkpoint import CheckpointInfo
from .fileio import atomic_write_text
from .run_dir import RECIPE_COPY, RUN_RECORD

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json", "additional_config.json")


_ABS_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s,\[\]'\"=/]+/)*([^\s,\[\]'\"=/]*)")


def scrub(value: Any) -> Any:
    """Replace absolute local paths, also inside strings (`dataset=[/home/me/a.jsonl]`), by their file
    name, recursively: nothing of this machine is published."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str) and "/" in value:
        return _ABS_PATH.sub(lambda m: m.group(1), value)
    return value


def public_record(info: CheckpointInfo) -> dict[str, Any]:
    """run.json as published: the fields infer/export read, with local paths scrubbed."""
    rec = info.record or {}
    keep = ("recipe_name", "overrides", "recipe", "model_type", "template", "internvl", "env", "versions", "created")
    return scrub({k: rec[k] for k in keep if k in rec})


def write_adapter_dir(info: CheckpointInfo, out: Path) -> None:
    """The publishable adapter: weights + config (base model named, not a local path) + record."""
    for name in ADAPTER_FILES:
        if (info.path / name).is_file():
            shutil.copyfile(info.path / name, out / name)
    cfg_path = out / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["base_model_name_or_path"] = base_model_id(info)
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")


def base_model_id(info: CheckpointInfo) -> str:
    return str(scrub((info.recipe or {}).get("model") or info.trained_from))


def write_record(info: CheckpointInfo, out: Path) -> None:
    """Our run record, scrubbed; swift's args.json (local paths throughout) is not published."""
    (out / "args.json").unlink(missing_ok=True)
    if info.record is not None:
        rec = public_record(info)
        atomic_write_text(out / RUN_RECORD, json.dumps(rec, indent=2, sort_keys=True) + "\n")
        atomic_write_text(out / RECIPE_COPY, yaml.safe_dump(rec.get("recipe", {}), sort_keys=False, allow_unicode=True))


def apply_knobs_to_configs(info: CheckpointInfo, model_dir: Path) -> list[str]:
    """Write the run's tile limit into the merged model's own configs, so transformers, vllm or
    lmdeploy users tile images as the model was trained (swift's env variables do not travel)."""
    max_num = info.knobs.get("max_num")
    changed: list[str] = []
    if max_num is None:
        return changed
    if info.template == "internvl_hf":
        for name in ("processor_config.json", "preprocessor_config.json"):
            path = model_dir / name
            if not path.is_file():
                continue
            cfg = json.loads(path.read_text(encoding="utf-8"))
            target = cfg.get("image_processor", cfg) if name == "processor_config.json" else cfg
            if "max_patches" in target:
                target["max_patches"] = max_num
                atomic_write_text(path, json.dumps(cfg, indent=2) + "\n")
                changed.append(f"{name}: max_patches={max_num}")
    else:
        path = model_dir / "config.json"
        cfg = json.loads(path.read_text(encoding="utf-8"))
        cfg["max_dynamic_patch"] = max_num
        atomic_write_text(path, json.dumps(cfg, indent=2) + "\n")
        changed.append(f"config.json: max_dynamic_patch={max_num}")
    return changed


def _dataset_lines(recipe: dict[str, Any]) -> list[str]:
    from .preflight import local_dataset_path
    out = []
    for key in ("dataset", "val_dataset"):
        for entry in recipe.get(key) or []:
            local = local_dataset_path(entry) if not entry.startswith("builtin:") else None
            size = ""
            if local is not None and local.is_file():
                with open(local, "rb") as f:
                    size = f" ({sum(1 for line in f if line.strip())} samples)"
            out.append(f"- {key}: `{scrub(entry)}`{size}")
    return out


def _metrics_lines(info: CheckpointInfo) -> list[str]:
    lines = []
    for path in sorted((info.path / "infer").glob("*.metrics.json")):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        for name, m in report.get("metrics", {}).items():
            if m.get("samples"):
                lines.append(f"| {Path(report.get('dataset', path.stem)).name} | {name} | {m['samples']} | "
                             f"{m['exact_match']:.3f} | {m['normalized_exact_match']:.3f} | {m['cer']:.3f} | "
                             f"{m['bleu']:.1f} |")
    if not lines:
        return ["No evaluation was run (`python infer.py CHECKPOINT --dataset val.jsonl` adds it here)."]
    return ["| dataset | model | samples | exact match | normalized EM | CER | BLEU |",
            "| --- | --- | --- | --- | --- | --- | --- |"] + lines


def model_card(info: CheckpointInfo, merged: bool, repo_id: str | None) -> str:
    recipe = scrub(info.recipe or {})
    base = base_model_id(info)
    name = repo_id or (info.record or {}).get("recipe_name", "internvl-lora")
    frozen = [part for part, key in (("vision tower", "freeze_vit"), ("projector", "freeze_aligner"),
                                     ("language model", "freeze_llm")) if recipe.get(key)]
    adapter = info.adapter_config
    targets = adapter.get("target_modules") or recipe.get("target_modules") or []
    knobs = ", ".join(f"{k}={v}" for k, v in sorted(info.knobs.items())) or "swift defaults"
    load_id = repo_id or "<this directory>"
    if merged:
        usage = f"""```python
from transformers import AutoModelForImageTextToText, AutoProcessor
model = AutoModelForImageTextToText.from_pretrained("{load_id}")
processor = AutoProcessor.from_pretrained("{load_id}")
```
```bash
swift infer --model {load_id} --model_type {info.model_type} --template {info.template} --max_length {info.max_length}
lmdeploy serve api_server {load_id}
```"""
    else:
        usage = f"""```python
from peft import PeftModel
from transformers import AutoModelForImageTextToText, AutoProcessor
base = AutoModelForImageTextToText.from_pretrained("{base}")
model = PeftModel.from_pretrained(base, "{load_id}")
processor = AutoProcessor.from_pretrained("{base}")
```
```bash
{' '.join(f'{k}={v}' for k, v in sorted(info.env.items()))} swift infer --adapters {load_id} --max_length {info.max_length}
# lmdeploy serves merged weights: python export.py CHECKPOINT --merge, then lmdeploy serve api_server <merged dir>
```"""
    versions = (info.record or {}).get("versions") or {}
    return "\n".join([
        "---",
        f"base_model: {base}",
        f"library_name: {'transformers' if merged else 'peft'}",
        "tags: [internvl, lora, ms-swift, internvl-kit, image-text-to-text]",
        "---",
        f"# {name}",
        "",
        f"{'Merged' if merged else 'LoRA adapter of a'} fine-tune of `{base}` with ms-swift "
        f"({info.model_type} / template `{info.template}`), exported by internvl-kit.",
        "",
        "## What was trained",
        "",
        "| | |",
        "| --- | --- |",
        f"| base model | `{base}` |",
        f"| tuner | {recipe.get('tuner_type', 'lora')} r={adapter.get('r', recipe.get('lora_rank'))} "
        f"alpha={adapter.get('lora_alpha', recipe.get('lora_alpha'))} |",
        f"| LoRA targets | {', '.join(map(str, targets)) if isinstance(targets, list) else targets} |",
        f"| frozen | {', '.join(frozen) or 'nothing'} |",
        f"| max_length | {info.max_length} |",
        f"| InternVL tiling | {knobs} |",
        f"| epochs / lr | {recipe.get('num_train_epochs')} / {recipe.get('learning_rate')} |",
        "",
        "## Data",
        "",
        *(_dataset_lines(info.recipe or {}) or ["- (not recorded)"]),
        "",
        "## Evaluation",
        "",
        *_metrics_lines(info),
        "",
        "## How to use",
        "",
        f"Re-apply the tiling the model was trained with ({knobs}); "
        + ("the merged configs already carry it." if merged else "swift's infer does not restore it from the adapter."),
        "",
        usage,
        "",
        "## Recipe",
        "",
        "```yaml",
        yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True).rstrip(),
        "```",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v),
        "",
    ])
