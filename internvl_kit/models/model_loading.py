"""Loading InternVL checkpoints outside swift's own commands (merge proofs), the way each route needs.

The official remote-code class derives from PreTrainedModel without GenerationMixin. transformers adds
the mixin to the class an Auto* load returns, but only on the first load of that model type in a
process: later loads get the registered class without it, and peft's causal-LM wrapper (what swift and
PeftModel use to apply an adapter) then fails with "object has no attribute
'prepare_inputs_for_generation'". `ensure_generation_mixin` gives a loaded model its mixin back.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


def ensure_generation_mixin(model: Any) -> None:
    """Give a remote-code model that lost GenerationMixin (second load in a process) its mixin back,
    and the generation config transformers only sets up for models that can generate."""
    if hasattr(model, "prepare_inputs_for_generation"):
        return
    from transformers import GenerationConfig
    from transformers.models.auto.auto_factory import add_generation_mixin_to_remote_model
    model.__class__ = add_generation_mixin_to_remote_model(type(model))
    if getattr(model, "generation_config", None) is None:     # only set up for classes that could generate
        try:
            model.generation_config = GenerationConfig.from_pretrained(model.config.name_or_path)
        except (OSError, ValueError):
            model.generation_config = GenerationConfig.from_model_config(model.config)


def local_dir(model: str) -> Path:
    """A local directory with the model's files: the path itself, or swift's download (cache first)."""
    path = Path(model).expanduser()
    if (path / "config.json").is_file():
        return path.resolve()
    from swift.utils import safe_snapshot_download
    return Path(safe_snapshot_download(model, download_model=True))


def load_model(model_dir: Path, model_type: str, dtype: Any) -> Any:
    """The checkpoint as its own class (InternVLChatModel through remote code, or the -HF class), in eval mode."""
    if model_type == "internvl_chat":
        from transformers import AutoModel
        model = AutoModel.from_pretrained(model_dir, trust_remote_code=True, dtype=dtype)
        ensure_generation_mixin(model)
    else:
        from transformers import AutoModelForImageTextToText
        model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=dtype)
    return model.eval()
