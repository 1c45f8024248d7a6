"""Every InternVL3 / InternVL3.5 checkpoint the toolkit supports, as data.

Sources of the figures:
  [3.5-report]  InternVL3.5 technical report (arXiv 2508.18265), Table 1: vision / LLM / total params
  [3-card]      InternVL3 model cards (shared/seeds/004_*, 002_*, 003_*): vision and language parts
  [llm-config]  the language models' own config.json: layers, hidden and intermediate sizes, vocab
  [llm-card]    the language models' model cards: parameter counts (Qwen2.5, InternLM3)
  [vit-config]  the InternViT checkpoints' config.json: heads, MLP width, norm, qk normalisation
  [swift]       ms-swift 4.6 model registry: model_type / template per id
  [seed-001]    InternVL3.5 guide: transformers>=4.52.1, >=4.55.0 for the GPT-OSS model
Projector parameters are computed from the dimensions (LayerNorm + Linear(4*vit_hidden, h) + Linear(h, h)).

    python -m internvl_kit.models.family        # print the table
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Tower:
    name: str
    params_b: float
    hidden: int
    layers: int
    heads: int
    intermediate: int
    norm: str                   # "layer_norm" | "rms_norm"
    qk_norm: bool


# [vit-config] the InternViT checkpoints' config.json
INTERNVIT_300M = Tower("InternViT-300M-448px-V2_5", 0.3, 1024, 24, 16, 4096, "layer_norm", False)
INTERNVIT_6B = Tower("InternViT-6B-448px-V2_5", 5.5, 3200, 45, 25, 12800, "rms_norm", True)


@dataclass(frozen=True)
class Size:
    """One model size: the parts every variant of it shares."""
    family: str                 # "InternVL3" | "InternVL3.5"
    size: str                   # "8B", "30B-A3B", ...
    vision: Tower
    llm: str
    llm_params_b: float
    layers: int
    hidden: int
    intermediate: int           # dense MLP width; for MoE the active experts' total width
    vocab: int
    active_b: float | None = None   # active parameters per token (MoE)
    min_transformers: str = "4.52.1"
    source: str = ""
    heads: int = 0              # attention heads, key/value heads and head width [llm-config]
    kv_heads: int = 0
    head_dim: int = 0
    arch: str = ""              # the LLM's transformers class: what a random model of the real shape is built as
    tie: bool = False           # input and output embeddings tied

    @property
    def projector_params_b(self) -> float:
        vh = self.vision.hidden * 4
        return round((2 * vh + vh * self.hidden + self.hidden + self.hidden * self.hidden + self.hidden) / 1e9, 3)

    @property
    def total_params_b(self) -> float:
        return round(self.vision.params_b + self.projector_params_b + self.llm_params_b, 2)

    @property
    def key(self) -> str:
        """Recipe-name form: internvl3-8b, internvl3_5-30b-a3b."""
        return f"{self.family.lower().replace('.', '_')}-{self.size.lower()}"


@dataclass(frozen=True)
class Model:
    id: str                     # ModelScope / Hugging Face id
    variant: str                # "chat" | "Instruct" | "Pretrained" | "MPO" | "HF"
    model_type: str             # swift --model_type
    template: str               # swift --template
    spec: Size


_3 = "[3-card] [llm-card] [llm-config]"
_35 = "[3.5-report] [llm-config]"
SIZES: tuple[Size, ...] = (
    Size("InternVL3", "1B", INTERNVIT_300M, "Qwen2.5-0.5B", 0.49, 24, 896, 4864, 151936, source=_3,
         heads=14, kv_heads=2, head_dim=64, arch="Qwen2ForCausalLM", tie=True),
    Size("InternVL3", "2B", INTERNVIT_300M, "Qwen2.5-1.5B", 1.54, 28, 1536, 8960, 151936, source=_3,
         heads=12, kv_heads=2, head_dim=128, arch="Qwen2ForCausalLM", tie=True),
    Size("InternVL3", "8B", INTERNVIT_300M, "Qwen2.5-7B", 7.61, 28, 3584, 18944, 151936, source=_3,
         heads=28, kv_heads=4, head_dim=128, arch="Qwen2ForCausalLM"),
    Size("InternVL3", "9B", INTERNVIT_300M, "InternLM3-8B-Instruct", 8.80, 48, 4096, 10240, 128512, source=_3,
         heads=32, kv_heads=2, head_dim=128, arch="InternLM3ForCausalLM"),
    Size("InternVL3", "14B", INTERNVIT_300M, "Qwen2.5-14B", 14.7, 48, 5120, 13824, 151936, source=_3,
         heads=40, kv_heads=8, head_dim=128, arch="Qwen2ForCausalLM"),
    Size("InternVL3", "38B", INTERNVIT_6B, "Qwen2.5-32B", 32.5, 64, 5120, 27648, 151936, source=_3,
         heads=40, kv_heads=8, head_dim=128, arch="Qwen2ForCausalLM"),
    Size("InternVL3", "78B", INTERNVIT_6B, "Qwen2.5-72B", 72.7, 80, 8192, 29568, 151936, source=_3,
         heads=64, kv_heads=8, head_dim=128, arch="Qwen2ForCausalLM"),
    Size("InternVL3.5", "1B", INTERNVIT_300M, "Qwen3-0.6B", 0.8, 28, 1024, 3072, 151936, source=_35,
         heads=16, kv_heads=8, head_dim=128, arch="Qwen3ForCausalLM", tie=True),
    Size("InternVL3.5", "2B", INTERNVIT_300M, "Qwen3-1.7B", 2.0, 28, 2048, 6144, 151936, source=_35,
         heads=16, kv_heads=8, head_dim=128, arch="Qwen3ForCausalLM", tie=True),
    Size("InternVL3.5", "4B", INTERNVIT_300M, "Qwen3-4B", 4.4, 36, 2560, 9728, 151936, source=_35,
         heads=32, kv_heads=8, head_dim=128, arch="Qwen3ForCausalLM", tie=True),
    Size("InternVL3.5", "8B", INTERNVIT_300M, "Qwen3-8B", 8.2, 36, 4096, 12288, 151936, source=_35,
         heads=32, kv_heads=8, head_dim=128, arch="Qwen3ForCausalLM"),
    Size("InternVL3.5", "14B", INTERNVIT_300M, "Qwen3-14B", 14.8, 40, 5120, 17408, 151936, source=_35,
         heads=40, kv_heads=8, head_dim=128, arch="Qwen3ForCausalLM"),
    Size("InternVL3.5", "38B", INTERNVIT_6B, "Qwen3-32B", 32.8, 64, 5120, 25600, 151936, source=_35,
         heads=64, kv_heads=8, head_dim=128, arch="Qwen3ForCausalLM"),
    Size("InternVL3.5", "30B-A3B", INTERNVIT_300M, "Qwen3-30B-A3B (MoE, 128 experts, 8 active)", 30.5, 48, 2048,
         8 * 768, 151936, active_b=3.3, source=_35,
         heads=32, kv_heads=4, head_dim=128, arch="Qwen3MoeForCausalLM"),
    Size("InternVL3.5", "241B-A28B", INTERNVIT_6B, "Qwen3-235B-A22B (MoE, 128 experts, 8 active)", 235.1, 94, 4096,
         8 * 1536, 151936, active_b=28.0, source=_35,
         heads=64, kv_heads=4, head_dim=128, arch="Qwen3MoeForCausalLM"),
    Size("InternVL3.5", "GPT-OSS-20B-A4B", INTERNVIT_300M, "GPT-OSS-20B (MoE, 32 experts, 4 active)", 20.9, 24,
         2880, 4 * 2880, 201088, active_b=4.0, min_transformers="4.55.0", source=_35 + " [seed-001]",
         heads=64, kv_heads=8, head_dim=64, arch="GptOssForCausalLM"),
)


def _variants(s: Size) -> list[Model]:
    if s.family == "InternVL3":
        base = f"OpenGVLab/InternVL3-{s.size}"
        chat = [(base, "chat"), (f"{base}-Instruct", "Instruct"), (f"{base}-Pretrained", "Pretrained")]
        return [Model(i, v, "internvl_chat", "internvl2_5", s) for i, v in chat] + \
            [Model(f"{base}-hf", "HF", "internvl", "internvl_hf", s)]
    if s.size == "GPT-OSS-20B-A4B":
        base = "OpenGVLab/InternVL3_5-GPT-OSS-20B-A4B-Preview"
        return [Model(base, "chat", "internvl_chat", "internvl3_5_gpt", s),
                Model(f"{base}-HF", "HF", "internvl", "internvl_hf", s)]
    base = f"OpenGVLab/InternVL3_5-{s.size}"
    chat = [(base, "chat"), (f"{base}-Instruct", "Instruct"), (f"{base}-Pretrained", "Pretrained"),
            (f"{base}-MPO", "MPO")]
    return [Model(i, v, "internvl_chat", "internvl3_5", s) for i, v in chat] + \
        [Model(f"{base}-HF", "HF", "internvl", "internvl_hf", s)]


@lru_cache(maxsize=1)
def models() -> tuple[Model, ...]:
    return tuple(m for s in SIZES for m in _variants(s))


def find(model: str) -> Model | None:
    """The table row of a model id (case-insensitive; a local directory matches by its name)."""
    want = model.rstrip("/").lower()
    for m in models():
        if want == m.id.lower() or want.endswith("/" + m.id.split("/")[-1].lower()):
            return m
    return None


def table() -> str:
    head = (f"{'model id':48} {'type':13} {'template':15} {'vision':26} {'LLM':44} "
            f"{'vis B':>6} {'proj B':>6} {'LLM B':>6} {'total':>6} {'active':>6} {'L':>3} {'hidden':>6} {'tf>=':>7}")
    rows = [head]
    for m in models():
        s = m.spec
        rows.append(f"{m.id:48} {m.model_type:13} {m.template:15} {s.vision.name:26} {s.llm[:44]:44} "
                    f"{s.vision.params_b:6.1f} {s.projector_params_b:6.3f} {s.llm_params_b:6.1f} "
                    f"{s.total_params_b:6.1f} {(s.active_b or s.total_params_b):6.1f} {s.layers:3} {s.hidden:6} "
                    f"{s.min_transformers:>7}")
    return "\n".join(rows)


if __name__ == "__main__":
    try:
        print(table())
    except BrokenPipeError:          # `python -m internvl_kit.models.family | head`
        pass
