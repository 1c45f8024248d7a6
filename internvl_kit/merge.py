"""Merge a LoRA checkpoint through `swift export --merge_lora`, then prove the merge.

The proof: on a probe input (an image and a question, encoded by the model's processor), the merged
model's logits equal base+adapter logits within the dtype's tolerance, and differ from the base
model's, so the adapter really is in. swift's `--exist_ok` silently reuses a stale directory, so the
merge always goes to a fresh temp directory that replaces the target only once proven.
"""
from __future__ import annotations

import gc
import os
import subprocess
from collections import deque
from pathlib import Path

from .checkpoint import CheckpointInfo
from .predict import apply_settings
from .swift_cmd import SwiftCommand

TOLERANCE = {"float32": 1e-4, "bfloat16": 3e-2, "float16": 3e-2}


class MergeError(Exception):
    """The merge failed or could not be proven (message says which)."""


def run_swift_merge(info: CheckpointInfo, out: Path) -> None:
    args = ["--adapters", str(info.path), "--merge_lora", "true", "--output_dir", str(out),
            "--model_type", info.model_type, "--template", info.template]
    dtype = (info.recipe or {}).get("torch_dtype")
    if dtype:
        args += ["--torch_dtype", dtype]
    cmd = SwiftCommand("export", args, info.env)
    tail: deque[str] = deque(maxlen=30)
    # No hub token for swift: with one set it logs in to the hub while parsing arguments; we push ourselves.
    env = {k: v for k, v in os.environ.items() if k != "MODELSCOPE_API_TOKEN"}
    proc = subprocess.Popen(cmd.argv(), env={**env, **cmd.env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        tail.append(line.rstrip())
    if proc.wait() != 0 or not (out / "config.json").is_file():
        raise MergeError("swift export --merge_lora failed:\n  " + "\n  ".join(tail))


def _probe_logits(model, inputs):
    import torch
    with torch.no_grad():
        return model(**inputs).logits.float()


def prove(info: CheckpointInfo, merged: Path) -> dict[str, float]:
    """Raise MergeError unless merged == base+adapter and merged != base on a probe input."""
    import torch
    from PIL import Image
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if info.model_type != "internvl":
        raise MergeError(f"merge proof needs the transformers-native model (model_type internvl); "
                         f"{info.model_type} is not supported yet")
    apply_settings(info)
    dtype_name = (info.recipe or {}).get("torch_dtype") or "float32"
    dtype = getattr(torch, dtype_name)
    processor = AutoProcessor.from_pretrained(merged)
    image = Image.new("RGB", (448, 224), (200, 40, 40))
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in the image?"}]}]
    text = processor.apply_chat_template(msgs, add_generation_prompt=True)
    inputs = dict(processor(images=[image], text=[text], return_tensors="pt"))
    inputs["pixel_values"] = inputs["pixel_values"].to(dtype)

    base = AutoModelForImageTextToText.from_pretrained(info.trained_from, dtype=dtype).eval()
    base_logits = _probe_logits(base, inputs)
    with_adapter = PeftModel.from_pretrained(base, str(info.path)).eval()
    adapter_logits = _probe_logits(with_adapter, inputs)
    del base, with_adapter
    gc.collect()
    merged_model = AutoModelForImageTextToText.from_pretrained(merged, dtype=dtype).eval()
    merged_logits = _probe_logits(merged_model, inputs)
    del merged_model
    gc.collect()

    scale = max(1.0, adapter_logits.abs().max().item())
    tol = TOLERANCE.get(dtype_name, 3e-2) * scale
    vs_adapter = (merged_logits - adapter_logits).abs().max().item()
    vs_base = (merged_logits - base_logits).abs().max().item()
    result = {"max_abs_diff_vs_base_plus_adapter": vs_adapter, "max_abs_diff_vs_base": vs_base, "tolerance": tol}
    if vs_base <= tol:
        raise MergeError(f"merged logits equal the base model's (max diff {vs_base:.3g} <= {tol:.3g}): "
                         f"the adapter is not in the merged weights")
    if vs_adapter > tol:
        raise MergeError(f"merged logits differ from base+adapter by {vs_adapter:.3g} (> tolerance {tol:.3g}): "
                         f"the merge is wrong")
    return result


def fresh_dir(target: Path) -> Path:
    """An empty sibling temp directory name (not created: swift refuses existing output dirs)."""
    return target.parent / f".{target.name}.tmp-{os.getpid()}"
