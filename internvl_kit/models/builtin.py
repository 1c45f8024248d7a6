"""Built-in assets named in recipes as `builtin:NAME`: the tiny models of both routes and the demo dataset.

They are generated (deterministically) on first use into a cache directory, $INTERNVL_KIT_HOME or
~/.cache/internvl_kit, so the demo and the tests need no download.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PREFIX = "builtin:"
DEMO_DATA = "demo-shapes"   # builtin:demo-shapes:train / builtin:demo-shapes:val
DEMO_DATA_VERSION = 1


@dataclass(frozen=True)
class TinyModel:
    arch: str            # tiny_model.build(arch=...): "hf" | "chat"
    llm: str             # "qwen2" | "qwen3"
    model_type: str      # swift --model_type
    template: str        # swift --template
    public_id: str       # the id published cards and adapter configs name instead of a local path


# One tiny model per route and template family, shaped like the checkpoints users take.
TINY_MODELS = {
    "tiny-internvl-hf": TinyModel("hf", "qwen2", "internvl", "internvl_hf", "internvl-kit/tiny-internvl-hf"),
    "tiny-internvl3": TinyModel("chat", "qwen2", "internvl_chat", "internvl2_5", "internvl-kit/tiny-internvl3"),
    "tiny-internvl3_5": TinyModel("chat", "qwen3", "internvl_chat", "internvl3_5", "internvl-kit/tiny-internvl3_5"),
}


def cache_home() -> Path:
    return Path(os.environ.get("INTERNVL_KIT_HOME") or Path.home() / ".cache" / "internvl_kit")


def is_builtin(ref: object) -> bool:
    return isinstance(ref, str) and ref.startswith(PREFIX)


def tiny(ref: str) -> TinyModel | None:
    """The tiny model a `builtin:` ref names, or None."""
    return TINY_MODELS.get(ref[len(PREFIX):]) if is_builtin(ref) else None


def _known() -> str:
    names = [*TINY_MODELS, f"{DEMO_DATA}:train", f"{DEMO_DATA}:val"]
    return ", ".join(PREFIX + n for n in names)


def resolve(ref: str, materialize: bool = True) -> Path:
    """Local path of a builtin asset; builds it first when materialize is true and it is missing."""
    from .tiny_model import BUILDER_VERSION

    name = ref[len(PREFIX):]
    if name in TINY_MODELS:
        spec = TINY_MODELS[name]
        path = cache_home() / f"{name}-v{BUILDER_VERSION}"
        if materialize and not (path / "config.json").is_file():
            from .tiny_model import build
            build(path, arch=spec.arch, llm=spec.llm)
        return path
    base, _, split = name.partition(":")
    if base == DEMO_DATA and split in ("train", "val"):
        root = cache_home() / f"{DEMO_DATA}-v{DEMO_DATA_VERSION}"
        path = root / f"{split}.jsonl"
        if materialize and not path.is_file():
            from .demo_data import generate
            generate(root)
        return path
    raise ValueError(f"unknown builtin {ref!r}; known: {_known()}")


def resolve_recipe_refs(data: dict, materialize: bool = True) -> tuple[dict, set[str]]:
    """Copy of recipe data with builtin refs in model/dataset/val_dataset replaced by local paths,
    and the set of those paths not built yet (only non-empty when materialize is false)."""
    out, pending = dict(data), set()

    def local(ref: str) -> str:
        path = resolve(ref, materialize)
        if not path.exists():
            pending.add(str(path))
        return str(path)

    if is_builtin(out.get("model")):
        out["model"] = local(out["model"])
    for key in ("dataset", "val_dataset"):
        if isinstance(out.get(key), list):
            out[key] = [local(d) if is_builtin(d) else d for d in out[key]]
    return out, pending
