"""Two proofs that a merged model is base + adapter, for both routes.

logits   On a probe image and question, encoded by swift's own template for the run's route, the
         merged model's logits equal base+adapter logits within the dtype's tolerance, and differ
         from the base model's. Loads one model at a time (the base, wrapped with the adapter in
         place, then the merged one): needs about one model's weights in memory.
weights  For every LoRA target, merged W equals base W + scaling * B @ A (peft's delta) within the
         rounding of the dtype, and every other tensor is byte-equal to the base's. Safetensors
         shards are read lazily, one tensor at a time: memory stays near the largest tensor, so it
         proves 38B-241B merges on an ordinary machine.
"""
from __future__ import annotations

import gc
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..infer.checkpoint import CheckpointInfo

# Logit tolerance, relative to the logit scale.
LOGIT_TOLERANCE = {"float32": 1e-4, "bfloat16": 3e-2, "float16": 3e-2}
# Per-element tolerance of a merged weight, relative to |expected| + |delta|: a few units in the last
# place of the stored dtype (peft adds the delta in the weight's dtype; the proof adds in float32).
WEIGHT_RTOL = {"F32": 2.0 ** -17, "BF16": 2.0 ** -6, "F16": 2.0 ** -9}
_LORA = re.compile(r"^(?P<module>.+)\.(?P<kind>lora_A\.weight|lora_B\.weight|lora_B\.bias)$")
_PEFT_PREFIX = "base_model.model."


class MergeError(Exception):
    """The merge failed or could not be proven (message says which)."""


# ------------------------------------------------------------------------------------------ weights
class Checkpoint:
    """The tensors of a safetensors checkpoint directory, by name; shards are opened lazily."""

    def __init__(self, directory: Path):
        from safetensors import safe_open
        self._safe_open = safe_open
        index = directory / "model.safetensors.index.json"
        single = directory / "model.safetensors"
        if index.is_file():
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            self.files = {name: directory / shard for name, shard in weight_map.items()}
        elif single.is_file():
            with safe_open(str(single), framework="pt") as f:
                self.files = {name: single for name in f.keys()}
        else:
            raise MergeError(f"{directory}: no safetensors weights (model.safetensors or its index); "
                             f"the weight proof reads safetensors only, use --proof logits")
        self._handles: dict[Path, Any] = {}

    def tensor(self, name: str):
        path = self.files[name]
        if path not in self._handles:
            self._handles[path] = self._safe_open(str(path), framework="pt", device="cpu")
        return self._handles[path].get_tensor(name)


@dataclass
class LoraPair:
    a: Any
    b: Any
    bias: Any = None


def _read_adapter(path: Path) -> tuple[dict[str, Any], dict[str, LoraPair], dict[str, Any]]:
    """(adapter_config, LoRA pairs by module path, whole tensors (modules_to_save) by parameter name)."""
    from safetensors.torch import load_file
    config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("peft_type", "LORA") != "LORA" or config.get("use_dora"):
        raise MergeError(f"the weight proof covers plain LoRA; this adapter is "
                         f"{'DoRA' if config.get('use_dora') else config.get('peft_type')}: use --proof logits")
    pairs: dict[str, dict[str, Any]] = {}
    whole: dict[str, Any] = {}
    for key, value in load_file(str(path / "adapter_model.safetensors")).items():
        name = key[len(_PEFT_PREFIX):] if key.startswith(_PEFT_PREFIX) else key
        m = _LORA.match(name)
        if m:
            pairs.setdefault(m["module"], {})[m["kind"]] = value
        elif "lora_" in name:
            raise MergeError(f"the weight proof does not cover {key} (embedding/conv LoRA or DoRA): "
                             f"use --proof logits")
        else:
            whole[name] = value
    lora = {}
    for module, parts in pairs.items():
        if "lora_A.weight" not in parts or "lora_B.weight" not in parts:
            raise MergeError(f"adapter: {module} has an incomplete LoRA pair ({', '.join(sorted(parts))})")
        lora[module] = LoraPair(parts["lora_A.weight"], parts["lora_B.weight"], parts.get("lora_B.bias"))
    return config, lora, whole


def _scaling(config: dict[str, Any], module: str, rank: int) -> float:
    """peft's LoRA scaling for one module: alpha / r (or alpha / sqrt(r)), with rank/alpha patterns."""
    from peft.utils.other import get_pattern_key
    alpha = config.get("lora_alpha", 8)
    alpha_pattern = config.get("alpha_pattern") or {}
    if alpha_pattern:
        alpha = alpha_pattern.get(get_pattern_key(alpha_pattern.keys(), module), alpha)
    return alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)


def _names_on_disk(model_dir: Path, model_type: str, names: list[str]) -> dict[str, str]:
    """In-memory parameter name -> checkpoint key. Remote code saves names as they are; transformers'
    own classes may rename on save (the -HF InternVL does): ask transformers for its reverse mapping."""
    if model_type == "internvl_chat":
        return {n: n for n in names}
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText
    from transformers.core_model_loading import revert_weight_conversion
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(model_dir))
    probes = {n: torch.empty(0) for n in names}
    by_id = {id(t): n for n, t in probes.items()}
    return {by_id[id(t)]: key for key, t in revert_weight_conversion(model, probes).items() if id(t) in by_id}


def _close(merged, expected, delta, rtol: float) -> tuple[bool, float]:
    """Every element within rtol * (|expected| + |delta|) (plus a floor for exact zeros); the worst ratio."""
    import torch
    err = (merged.float() - expected).abs()
    bound = rtol * (expected.abs() + delta.abs()) + 1e-30
    worst = float((err / bound).max()) if err.numel() else 0.0
    return bool(torch.all(err <= bound)), worst


def prove_weights(info: CheckpointInfo, base_dir: Path, merged: Path) -> dict[str, Any]:
    """Raise MergeError unless merged = base + adapter, tensor by tensor; returns what was checked."""
    import torch
    config, lora, whole = _read_adapter(info.path)
    base, out = Checkpoint(base_dir), Checkpoint(merged)
    missing, extra = sorted(set(base.files) - set(out.files)), sorted(set(out.files) - set(base.files))
    if missing or extra:
        raise MergeError(f"merged tensors differ from the base's: missing {missing[:5]}, extra {extra[:5]}")
    names = [m + ".weight" for m in lora] + [m + ".bias" for m, p in lora.items() if p.bias is not None]
    on_disk = _names_on_disk(base_dir, info.model_type, names + list(whole))
    unmapped = [n for n in names + list(whole) if on_disk.get(n) not in base.files]
    if unmapped:
        raise MergeError(f"cannot find the base tensor of LoRA target(s) {unmapped[:5]} in {base_dir}: "
                         f"use --proof logits")
    fan_in_fan_out = bool(config.get("fan_in_fan_out"))
    checked: dict[str, str] = {}
    worst, changed = 0.0, 0
    for module, pair in lora.items():
        rank = pair.a.shape[0]
        scale = _scaling(config, module, rank)
        delta = (pair.b.float() @ pair.a.float()) * scale
        updates = [(module + ".weight", delta.T if fan_in_fan_out else delta)]
        if pair.bias is not None:
            updates.append((module + ".bias", pair.bias.float() * scale))
        for name, d in updates:
            key = on_disk[name]
            w_base, w_merged = base.tensor(key), out.tensor(key)
            if w_base.shape != d.shape or w_merged.shape != w_base.shape:
                raise MergeError(f"{key}: shapes differ (base {tuple(w_base.shape)}, merged "
                                 f"{tuple(w_merged.shape)}, B@A {tuple(d.shape)})")
            expected = w_base.float() + d
            rtol = WEIGHT_RTOL.get(_dtype_code(w_merged), 2.0 ** -6)
            ok, ratio = _close(w_merged, expected, d, rtol)
            if not ok and torch.equal(w_merged, w_base):
                raise MergeError(f"{key}: merged weight equals the base's, though the adapter changes it (by up to "
                                 f"{float(d.abs().max()):.3g}): the adapter is not in the merged weights")
            if not ok:
                raise MergeError(f"{key}: merged weight != base + scaling * B @ A (worst element off by "
                                 f"{ratio:.3g}x the {w_merged.dtype} tolerance): the merge is wrong")
            worst = max(worst, ratio)
            changed += int(not torch.equal(w_merged, w_base))
            checked[key] = "lora"
    for name, tensor in whole.items():
        key = on_disk[name]
        if not torch.equal(out.tensor(key), tensor.to(out.tensor(key).dtype)):
            raise MergeError(f"{key}: merged tensor is not the adapter's trained copy (modules_to_save)")
        checked[key] = "replaced"
    for key in base.files:
        if key in checked:
            continue
        a, b = base.tensor(key), out.tensor(key)
        if not torch.equal(b, a.to(b.dtype)):
            raise MergeError(f"{key}: not a LoRA target, yet the merged tensor differs from the base's")
    if lora and changed == 0:
        raise MergeError(f"merged LoRA targets equal the base's ({len(lora)} checked): the adapter is not in "
                         f"the merged weights")
    return {"proof": "weights", "lora_targets": len(lora), "replaced": len(whole),
            "unchanged": len(base.files) - len(checked), "changed_targets": changed,
            "worst_vs_tolerance": worst}


def _dtype_code(tensor) -> str:
    import torch
    return {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}.get(tensor.dtype, "")


# ------------------------------------------------------------------------------------------- logits
def weights_bytes(model_dir: Path) -> int:
    return sum(p.stat().st_size for p in model_dir.glob("*.safetensors")) or \
        sum(p.stat().st_size for p in model_dir.glob("*.bin"))


def available_memory() -> int:
    """Bytes of RAM available now (MemAvailable), or 0 when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def logits_fit(model_dir: Path, dtype_bytes: int) -> bool:
    """Whether the logit proof (one model at a time, weights in the proof's dtype) fits in RAM."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    stored = 4 if (config.get("dtype") or config.get("torch_dtype")) == "float32" else 2
    on_disk = weights_bytes(model_dir)
    need = on_disk * dtype_bytes / stored * 1.3 + 2 * 1024 ** 3
    return need < available_memory()


def probe_inputs(info: CheckpointInfo, model_dir: Path, dtype: Any) -> dict[str, Any]:
    """A probe image and question, encoded by swift's own template for this route and tiling."""
    import torch
    from PIL import Image
    from swift import get_processor, get_template

    processor = get_processor(str(model_dir), model_type=info.model_type, download_model=False)
    template = get_template(processor, template_type=info.template)
    template.set_mode("train")
    width, height = 448, 224
    image = Image.new("RGB", (width, height))
    image.putdata([(x * 255 // width, y * 255 // height, (x + y) % 256) for y in range(height) for x in range(width)])
    encoded = template.encode({"messages": [{"role": "user", "content": "<image>What is in the image?"},
                                            {"role": "assistant", "content": "A gradient."}], "images": [image]})
    ids = torch.tensor([encoded["input_ids"]])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
              "pixel_values": encoded["pixel_values"].to(dtype)}
    if info.model_type == "internvl_chat":
        inputs["image_flags"] = torch.ones(inputs["pixel_values"].shape[0], 1, dtype=torch.long)
    tokenizer = getattr(processor, "tokenizer", processor)
    inputs["img_context_token_id"] = tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    return inputs


def _logits(model: Any, inputs: dict[str, Any]):
    import torch
    inputs = dict(inputs)
    context_id = inputs.pop("img_context_token_id")
    # LoRA layers sit inside the base model; calling it directly avoids peft's causal-LM forward,
    # which passes inputs_embeds=None, a keyword the official chat class does not take.
    target = getattr(model, "get_base_model", lambda: model)()
    if hasattr(target, "img_context_token_id"):
        target.img_context_token_id = context_id             # the official chat class needs it set
    with torch.no_grad():
        return target(**inputs).logits.float()


def prove_logits(info: CheckpointInfo, base_dir: Path, merged: Path) -> dict[str, Any]:
    """Raise MergeError unless merged == base+adapter and merged != base on the probe."""
    import torch
    from peft import PeftModel

    from ..models.model_loading import load_model
    from ..infer.predict import apply_settings

    apply_settings(info)
    dtype_name = (info.recipe or {}).get("torch_dtype") or "float32"
    dtype = getattr(torch, dtype_name)
    inputs = probe_inputs(info, merged, dtype)
    model = load_model(base_dir, info.model_type, dtype)
    base_logits = _logits(model, inputs)
    model = PeftModel.from_pretrained(model, str(info.path), adapter_name="policy").eval()
    adapter_logits = _logits(model, inputs)
    reference = info.recipe_adapter("ref_adapters") if (info.recipe or {}).get("rlhf_type") else None
    reference_logits = None
    if reference is not None:               # a preference run's reference: the merge must be the policy, not it
        model.load_adapter(str(reference), adapter_name="reference")
        model.set_adapter("reference")
        reference_logits = _logits(model, inputs)
    del model
    gc.collect()
    model = load_model(merged, info.model_type, dtype)
    merged_logits = _logits(model, inputs)
    del model
    gc.collect()

    scale = max(1.0, adapter_logits.abs().max().item())
    tol = LOGIT_TOLERANCE.get(dtype_name, 3e-2) * scale
    vs_adapter = (merged_logits - adapter_logits).abs().max().item()
    vs_base = (merged_logits - base_logits).abs().max().item()
    if vs_base <= tol:
        raise MergeError(f"merged logits equal the base model's (max diff {vs_base:.3g} <= {tol:.3g}): "
                         f"the adapter is not in the merged weights")
    if vs_adapter > tol:
        raise MergeError(f"merged logits differ from base+adapter by {vs_adapter:.3g} (> tolerance {tol:.3g}): "
                         f"the merge is wrong")
    out = {"proof": "logits", "max_abs_diff_vs_base_plus_adapter": vs_adapter, "max_abs_diff_vs_base": vs_base,
           "tolerance": tol, "probe_tokens": int(inputs["input_ids"].shape[1])}
    if reference_logits is not None:
        vs_reference = (merged_logits - reference_logits).abs().max().item()
        if vs_reference <= tol:
            raise MergeError(f"merged logits equal those of the run's reference adapter {reference.name} (max diff "
                             f"{vs_reference:.3g} <= {tol:.3g}): the preference training left the policy where it began")
        out.update(max_abs_diff_vs_reference=vs_reference, reference=reference.name)
    return out


PROOFS = ("auto", "weights", "logits")


def prove(info: CheckpointInfo, merged: Path, how: str = "auto") -> list[dict[str, Any]]:
    """Run the proofs `how` asks for: auto = the weight proof, plus the logit proof when it fits in RAM."""
    from ..models.model_loading import local_dir
    base_dir = local_dir(info.trained_from)
    results = []
    if how in ("auto", "weights"):
        results.append(prove_weights(info, base_dir, merged))
    dtype_name = (info.recipe or {}).get("torch_dtype") or "float32"
    fits = logits_fit(merged, 4 if dtype_name == "float32" else 2)
    if how == "logits" or (how == "auto" and fits):
        results.append(prove_logits(info, base_dir, merged))
    elif how == "auto":
        results.append({"proof": "logits", "skipped": "the models do not fit in RAM; the weight proof stands"})
    return results
