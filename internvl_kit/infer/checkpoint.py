"""Read what a run saved next to its weights, so infer/export re-apply it (swift does not).

A CHECKPOINT argument may be an adapter checkpoint (checkpoint-N/), a run directory (its last
checkpoint is used) or a merged model directory. The toolkit's run.json is preferred; swift's own
args.json is the fallback for checkpoints trained without the toolkit (tiling knobs then unknown).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models import builtin
from ..train.run_dir import RUN_RECORD, last_checkpoint
from ..train.swift_cmd import KNOB_ENV, knob_env


class CheckpointError(Exception):
    """The checkpoint cannot be used; the message says why and what to do."""


@dataclass
class CheckpointInfo:
    path: Path                     # the adapter checkpoint or merged model directory
    kind: str                      # "adapter" | "merged"
    base_model: str                # what to load: the base model for adapters, the directory itself when merged
    model_type: str
    template: str
    max_length: int | None
    knobs: dict[str, int] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] | None = None     # run.json, when the toolkit trained it
    warnings: list[str] = field(default_factory=list)
    trained_from: str = ""         # the base model the run started from (for --compare-base)
    export: str | None = None      # "adapter" | "merged" for a directory export.py wrote, else None

    @property
    def env(self) -> dict[str, str]:
        return knob_env(self.knobs)

    @property
    def image_tag(self) -> str:
        """How the training rows wrote the image tag before their text (from the run's data plan); unknown
        (no plan) means the converter's and InternVL's own data format, `<image>\n`."""
        rec = self.record or {}
        tag = rec.get("image_tag") or (rec.get("data_plan") or {}).get("image_tag")
        return tag if tag in ("<image>", "<image>\n") else "<image>\n"

    def recipe_adapter(self, key: str) -> Path | None:
        """The one adapter checkpoint the recipe's `key` names, when it is on disk: `adapters`, where a chained
        run started (a preference run: its SFT); `ref_adapters`, the reference a preference run was measured by."""
        named = (self.recipe or {}).get(key) or []
        if len(named) != 1:
            return None
        path = Path(str(named[0])).expanduser()
        return path if (path / "adapter_config.json").is_file() else None

    @property
    def adapter_config(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / "adapter_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable ({e})") from None


def load(arg: str | Path) -> CheckpointInfo:
    path = Path(arg).expanduser().resolve()
    if not path.exists():
        raise CheckpointError(f"{arg}: no such checkpoint directory")
    if not path.is_dir():
        raise CheckpointError(f"{arg}: not a directory (give checkpoint-N/, a run directory or a merged model)")
    if not (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        last = last_checkpoint(path)
        if last is None:
            raise CheckpointError(f"{arg}: neither a checkpoint (no adapter_config.json or config.json) "
                                  f"nor a run directory with checkpoint-N/ inside")
        path = last
    kind = "adapter" if (path / "adapter_config.json").is_file() else "merged"
    record = _read_json(path / RUN_RECORD) or _read_json(path.parent / RUN_RECORD)
    args = _read_json(path / "args.json") or _read_json(path.parent / "args.json")
    if record is None and args is None:
        raise CheckpointError(f"{arg}: no run.json or args.json next to the weights, so the base model, template "
                              f"and tiling are unknown; pass a checkpoint written by train.py or swift")
    warnings = []
    if record is not None:
        recipe = record.get("recipe") or {}
        base = recipe.get("model") or record.get("model")
        if builtin.is_builtin(base):
            base = str(builtin.resolve(base))
        info = CheckpointInfo(path, kind, base, record["model_type"], record["template"],
                              recipe.get("max_length"), dict(record.get("internvl") or {}), recipe, record)
    else:
        base = args.get("model")
        info = CheckpointInfo(path, kind, base, args.get("model_type"), args.get("template"), args.get("max_length"),
                              {}, {}, None)
        warnings.append(f"{path}: trained without the toolkit (no run.json): tiling knobs "
                        f"({', '.join(KNOB_ENV.values())}) unknown, using swift's defaults")
    info.trained_from = info.base_model
    info.export = (record or {}).get("export")
    if kind == "merged":
        info.base_model = str(path)
    if not info.model_type or not info.template:
        raise CheckpointError(f"{arg}: its args name no model_type/template; pass a checkpoint written by train.py")
    if kind == "adapter" and info.base_model and not Path(info.base_model).exists() and info.base_model.startswith("/"):
        raise CheckpointError(f"{arg}: base model {info.base_model} no longer exists on this machine")
    info.warnings = warnings
    return info
