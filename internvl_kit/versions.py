"""Installed versions of the stack, read from package metadata (no heavy imports)."""
from __future__ import annotations

from importlib import metadata

STACK = ("internvl-kit", "ms-swift", "transformers", "peft", "torch", "torchvision", "trl",
         "accelerate", "datasets", "deepspeed", "modelscope")


def stack_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in STACK:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out
