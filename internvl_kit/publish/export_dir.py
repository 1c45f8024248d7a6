"""What an exported directory carries besides weights: the run record without local paths, a minimal
args.json for swift, and the run's knobs written into the model's own configs. Shared by the adapter
and the merged export (the card is model_card.py)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from ..models import builtin
from ..infer.checkpoint import CheckpointInfo
from ..fileio import atomic_write_text
from ..train.run_dir import RECIPE_COPY, RUN_RECORD

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


def public_record(info: CheckpointInfo, export: str) -> dict[str, Any]:
    """run.json as published: the fields infer/export read, with local paths scrubbed, marked as an
    export ("adapter" | "merged") so that export.py pushes such a directory as it is."""
    rec = info.record or {}
    keep = ("recipe_name", "overrides", "recipe", "model_type", "template", "internvl", "env", "versions", "created")
    return {**scrub({k: rec[k] for k in keep if k in rec}), "export": export, "image_tag": info.image_tag}


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
    """The base model as others can fetch it: the recipe's hub id (a builtin tiny model's public id)."""
    model = (info.recipe or {}).get("model") or info.trained_from
    tiny = builtin.tiny(model)
    return tiny.public_id if tiny else str(scrub(model))


# What `swift infer --adapters DIR` reads from DIR/args.json to rebuild the model and template
# (swift 4.6 BaseArguments.load_args_from_ckpt); swift's own args.json is full of local paths.
SWIFT_ARGS_KEYS = ("model", "model_type", "model_revision", "torch_dtype", "attn_impl", "new_special_tokens",
                   "rope_scaling", "max_model_len", "template", "system", "truncation_strategy",
                   "agent_template", "norm_bbox", "use_chat_template", "response_prefix", "tuner_type",
                   "task_type", "swift_version")


def write_swift_args(info: CheckpointInfo, out: Path) -> None:
    """A minimal args.json so that `swift infer --adapters OUT` finds its base model by its public id."""
    args = {}
    for source in (info.path / "args.json", info.path.parent / "args.json"):
        if source.is_file():
            args = json.loads(source.read_text(encoding="utf-8"))
            break
    keep = {k: args[k] for k in SWIFT_ARGS_KEYS if args.get(k) is not None}
    keep.update(model=base_model_id(info), model_type=info.model_type, template=info.template)
    atomic_write_text(out / "args.json", json.dumps(scrub(keep), indent=2, ensure_ascii=False) + "\n")


def source_fingerprint(info: CheckpointInfo) -> str:
    """sha256 of the checkpoint's adapter files: which training state an export was made from (streamed)."""
    import hashlib
    h = hashlib.sha256()
    for name in ADAPTER_FILES:
        path = info.path / name
        if path.is_file():
            h.update(name.encode() + b"\0")
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def made_from(info: CheckpointInfo, out: Path, export: str) -> bool:
    """Whether the export directory `out` is a complete `export` ("adapter" | "merged") of exactly this
    checkpoint (exports are written whole, then renamed into place: one that exists is complete)."""
    try:
        rec = json.loads((out / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(rec, dict) and rec.get("export") == export and rec.get("source") == source_fingerprint(info)


def write_record(info: CheckpointInfo, out: Path, export: str) -> None:
    """Our run record, scrubbed, with the fingerprint of the checkpoint it came from; swift's args.json
    (local paths throughout) is not published as it is."""
    (out / "args.json").unlink(missing_ok=True)
    if info.record is not None:
        rec = {**public_record(info, export), "source": source_fingerprint(info)}
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
