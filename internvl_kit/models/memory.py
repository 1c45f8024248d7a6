"""Per-GPU memory of a LoRA (or full) fine-tuning run, from the model's dimensions and the recipe.

A first-order model, calibrated on the published points (tests/models/test_memory.py shows the comparison):
  weights        all parameters in the training dtype; ZeRO-3 shards them over the GPUs, ZeRO-3
                 offload keeps ~10% resident
  trainable      LoRA (or full) parameters: fp32 master + fp32 grad + two AdamW moments = 16 B each;
                 ZeRO-1/2/3 shard the 12 B of grads and moments, offload moves them to the CPU
  LM activations with gradient checkpointing STORED_PER_LAYER hidden-size tensors per layer plus one
                 layer's working set; without it every layer's working set (16 h + 3 i values per token)
  logits         sequence x vocab x 6 B: bf16 logits and their fp32 upcast for the loss
  vision         frozen ViT: forward working set per tile; trainable ViT: activations of every layer
  overhead       1.5 GiB CUDA context and allocator slack, plus ZeRO-3 gather buffers
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .family import Size

GIB = 1024 ** 3
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}
OVERHEAD_GIB = 1.5
# Hidden-size tensors kept per layer under gradient checkpointing. One in theory (the layer input); 8
# is calibrated on the two published measurements (InternVL3-8B 24 GiB, InternVL3.5-8B 33 GB), which
# a count of one underestimated by 17%. With it the estimate is +1% and +15% over them: MARGIN says so.
STORED_PER_LAYER = 8
MARGIN = "calibrated on two published runs: 1-15% over what they measured"


@dataclass
class Setup:
    gpus: int = 1
    max_length: int = 4096
    batch: int = 1
    dtype: str = "bfloat16"
    checkpointing: bool = True
    tuner: str = "lora"
    lora_rank: int = 8
    freeze_vit: bool = True
    freeze_llm: bool = False
    deepspeed: str | None = None        # zero0..zero3, zero2_offload, zero3_offload
    max_num: int = 12

    @classmethod
    def from_recipe(cls, data: dict[str, Any], gpus: int | None = None) -> "Setup":
        return cls(gpus=gpus or int(data.get("nproc_per_node", 1)) * int(data.get("nnodes", 1)),
                   max_length=int(data.get("max_length") or 4096),     # unset: swift takes the model's own
                   batch=int(data.get("per_device_train_batch_size", 1)) * (2 if data.get("rlhf_type") in PAIRED else 1),
                   dtype=data.get("torch_dtype") or "bfloat16",
                   checkpointing=bool(data.get("gradient_checkpointing", True)),
                   tuner=data.get("tuner_type", "lora"), lora_rank=int(data.get("lora_rank", 8)),
                   freeze_vit=bool(data.get("freeze_vit", True)), freeze_llm=bool(data.get("freeze_llm", False)),
                   deepspeed=deepspeed_preset(data.get("deepspeed")), max_num=int((data.get("internvl") or {}).get("max_num", 12)))


# Preference types whose batch holds each row twice (chosen and rejected, concatenated by swift's trainer). The
# reference model of a LoRA run is the policy with its adapter off: no second copy of the weights.
PAIRED = ("dpo", "orpo", "simpo", "cpo", "rm")


def deepspeed_preset(value: Any) -> str | None:
    """The preset (zero0..zero3, _offload) a recipe's `deepspeed` amounts to: a preset name as it is, an
    inline config or a JSON file by its zero_optimization stage and CPU offload. A file that does not read
    counts as no DeepSpeed (the preflight reports it)."""
    if value is None or isinstance(value, str) and not value.endswith(".json"):
        return value
    config = value
    if isinstance(value, str):
        import json
        try:
            config = json.loads(Path(value).expanduser().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    zero = config.get("zero_optimization") if isinstance(config, dict) else None
    if not isinstance(zero, dict):
        return "zero0"
    stage = zero.get("stage", 0)
    offload = any(isinstance(zero.get(k), dict) and zero[k].get("device") == "cpu"
                  for k in ("offload_optimizer", "offload_param"))
    return f"zero{stage}" + ("_offload" if offload and stage in (2, 3) else "")


@dataclass
class Estimate:
    parts: dict[str, float]            # GiB per GPU
    setup: Setup
    gpu_gib: float | None = None
    advice: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    @property
    def fits(self) -> bool | None:
        return None if self.gpu_gib is None else self.total <= self.gpu_gib

    def render(self) -> str:
        s = self.setup
        lines = [f"per-GPU memory estimate: {s.gpus} GPU(s), {s.deepspeed or 'no DeepSpeed'}, {s.tuner}"
                 f"{f' r={s.lora_rank}' if s.tuner == 'lora' else ''}, max_length {s.max_length}, batch {s.batch}, "
                 f"{s.dtype}, gradient checkpointing {'on' if s.checkpointing else 'off'}"]
        for name, gib in self.parts.items():
            lines.append(f"  {name:34} {gib:8.1f} GiB")
        lines.append(f"  {'total':34} {self.total:8.1f} GiB   ({MARGIN})")
        if self.gpu_gib is not None:
            lines.append(f"  {'fits in ' + format(self.gpu_gib, 'g') + ' GiB per GPU':34} "
                         f"{'yes' if self.fits else 'NO'}")
        lines += [f"  to fit: {a}" for a in self.advice]
        return "\n".join(lines)


def _lora_params(spec: Size, rank: int) -> float:
    """LoRA on every linear of the language model: r x (in + out) per matrix. MoE experts are fused
    3-D parameters in transformers 5, not nn.Linear, so only attention is counted for MoE models."""
    h, i = spec.hidden, spec.intermediate
    attention = 2 * h + 2 * (h + h // 4) + 2 * h          # q, k, v (grouped kv ~ h/4), o
    mlp = 0 if spec.active_b else 3 * (h + i)             # gate, up, down
    return rank * spec.layers * (attention + mlp)


def estimate(spec: Size, setup: Setup, gpu_gib: float | None = None) -> Estimate:
    b = DTYPE_BYTES.get(setup.dtype, 2)
    ds = setup.deepspeed or ""
    n = max(setup.gpus, 1)
    total_params = spec.total_params_b * 1e9
    weights = total_params * b
    if ds.startswith("zero3"):
        weights = weights / n * (0.1 if ds.endswith("offload") else 1.0)

    if setup.tuner == "lora":
        trainable = _lora_params(spec, setup.lora_rank)
    else:
        trainable = (0 if setup.freeze_llm else spec.llm_params_b * 1e9) + \
            (0 if setup.freeze_vit else spec.vision.params_b * 1e9) + spec.projector_params_b * 1e9
    states = trainable * 12                                  # fp32 grad + AdamW m and v
    if ds.endswith("offload"):
        states = 0.0
    elif ds and ds != "zero0":
        states /= n
    master = trainable * 4 / (n if ds.startswith("zero3") else 1)

    tokens = setup.max_length * setup.batch
    h, i, L = spec.hidden, spec.intermediate, spec.layers
    layer_work = tokens * (16 * h + 3 * i) * b
    acts = (STORED_PER_LAYER * L * tokens * h * b + layer_work) if setup.checkpointing else L * layer_work
    logits = tokens * spec.vocab * 6
    vt = spec.vision
    tiles = (setup.max_num + 1) * setup.batch
    if setup.freeze_vit:
        vision = tiles * 1025 * vt.hidden * 4 * b                  # forward working set, no graph kept
    else:
        vision = tiles * 1025 * vt.hidden * b * (vt.layers if setup.checkpointing else 16 * vt.layers)
    gather = (4 * h * h + 3 * h * i) * b * 2 if ds.startswith("zero3") else 0

    parts = {
        "weights (frozen + trained)": weights / GIB,
        "trainable: fp32 master": master / GIB,
        "trainable: grads + AdamW states": states / GIB,
        "LM activations": acts / GIB,
        "logits + loss": logits / GIB,
        "vision tower": vision / GIB,
        "CUDA context, buffers": OVERHEAD_GIB + gather / GIB,
    }
    est = Estimate(parts, setup, gpu_gib)
    if est.fits is False:
        est.advice = advise(spec, setup, gpu_gib)
    return est


def advise(spec: Size, setup: Setup, gpu_gib: float) -> list[str]:
    """The smallest changes that make the run fit, in the order a person would try them."""
    from dataclasses import replace

    def fits(s: Setup) -> bool:
        return estimate(spec, s).total <= gpu_gib

    out = []
    if not (setup.deepspeed or "").startswith("zero3") and setup.gpus > 1 and fits(replace(setup, deepspeed="zero3")):
        out.append(f"deepspeed=zero3 on the same {setup.gpus} GPUs")
    strategy = setup.deepspeed if (setup.deepspeed or "").startswith("zero3") else "zero3"
    for gpus in (2, 4, 8, 16, 32, 64):
        if gpus > setup.gpus and fits(replace(setup, gpus=gpus, deepspeed=strategy)):
            out.append(f"{gpus} GPUs with deepspeed={strategy} (nproc_per_node / nnodes)")
            break
    for frac in (0.75, 0.5, 0.25):
        shorter = int(setup.max_length * frac)
        if fits(replace(setup, max_length=shorter)):
            out.append(f"max_length={shorter} (check how many samples that drops: python -m data_tools stats)")
            break
    if not setup.freeze_vit and fits(replace(setup, freeze_vit=True)):
        out.append("freeze_vit=true")
    elif not setup.freeze_vit and fits(replace(setup, max_num=max(1, setup.max_num // 2))):
        out.append(f"internvl.max_num={max(1, setup.max_num // 2)} (fewer tiles through the trainable ViT)")
    if not setup.checkpointing and fits(replace(setup, checkpointing=True)):
        out.append("gradient_checkpointing=true")
    if not out and fits(replace(setup, deepspeed="zero3_offload")):
        out.append("deepspeed=zero3_offload (slow: parameters and optimizer on the CPU)")
    return out or ["no single change found: reduce max_length and use more GPUs with zero3"]
