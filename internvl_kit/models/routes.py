"""Which swift route a model takes: its (model_type, template), so that one key, `model`, picks it.

InternVL reaches swift by two routes: the official checkpoints through trust_remote_code
(model_type internvl_chat; template internvl2_5 for InternVL3, internvl3_5 for InternVL3.5,
internvl3_5_gpt for the GPT-OSS model) and the transformers-native -HF checkpoints (model_type
internvl, template internvl_hf). The route of a model comes from, in this order: the toolkit's
builtin tiny models, a local checkpoint's own config.json, the model family table.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import builtin, family

HF = ("internvl", "internvl_hf")
# LLM architecture of an internvl_chat checkpoint -> swift's template (ms-swift 4.6 registry)
CHAT_TEMPLATE_BY_LLM = (("Qwen3", "internvl3_5"), ("GptOss", "internvl3_5_gpt"))
CHAT_DEFAULT_TEMPLATE = "internvl2_5"      # Qwen2 / Qwen2.5 / InternLM3 language models


@dataclass(frozen=True)
class Route:
    model_type: str
    template: str
    source: str          # where the route was read, for messages

    @property
    def is_hf(self) -> bool:
        return self.model_type == HF[0]


def from_config(config: dict) -> tuple[str, str] | None:
    """(model_type, template) of a checkpoint's config.json contents, or None if not InternVL."""
    model_type = config.get("model_type")
    if model_type == HF[0]:
        return HF
    if model_type == "internvl_chat":
        arch = ((config.get("llm_config") or {}).get("architectures") or [""])[0]
        template = next((t for prefix, t in CHAT_TEMPLATE_BY_LLM if arch.startswith(prefix)), CHAT_DEFAULT_TEMPLATE)
        return "internvl_chat", template
    return None


def route(model: str) -> Route | None:
    """The route of a model reference (builtin:, local directory or hub id), or None when unknown."""
    tiny = builtin.tiny(model)
    if tiny is not None:
        return Route(tiny.model_type, tiny.template, f"builtin tiny model {model}")
    config_path = Path(model).expanduser() / "config.json"
    if config_path.is_file():
        try:
            found = from_config(json.loads(config_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            found = None
        if found is not None:
            return Route(*found, str(config_path))
    row = family.find(model)
    if row is not None:
        return Route(row.model_type, row.template, f"model table ({row.id})")
    return None
