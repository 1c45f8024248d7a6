"""Generate the recipe schema from swift's own argument dataclasses, so a recipe speaks all of swift.

Every field of `swift.SftArguments` (the inherited transformers TrainingArguments included) becomes a
property with swift's type, Literal choices, default and help. `swift rlhf` (preference tuning) reads every
one of those and more: a field only `swift.RLHFArguments` has (rlhf_type, beta, ref_adapters, ...) is marked
`x-command: rlhf`, and a shared one that `swift rlhf` reads otherwise (loss_type is a list there) carries that
reading as `x-rlhf` (schema.schema("rlhf") applies it). The toolkit's own keys and a few
curated constraints (ranges, InternVL's model types and templates) are layered on top. The result is
committed as internvl_kit/recipe/schema.json; tests/recipe/test_schema.py regenerates it and fails when it
drifts from the installed swift.

    python -m internvl_kit.recipe.schema_gen          # rewrite schema.json from the installed swift
    python -m internvl_kit.recipe.schema_gen --check  # exit 1 if schema.json is stale
"""
from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from .schema import SCHEMA_PATH

# The toolkit's keys (never passed to swift as flags) and the swift 3.x alias it still accepts.
TOOLKIT: dict[str, dict[str, Any]] = {
    "extends": {"description": "Recipe(s) this one inherits from, relative to this file. Mappings deep-merge; lists "
                               "and scalars replace.",
                "oneOf": [{"type": "string", "minLength": 1},
                          {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}],
                "x-swift": False},
    "description": {"type": "string", "description": "What this recipe is for (shown by train.py; not passed to "
                                                     "swift).", "x-swift": False},
    "internvl": {"type": "object", "additionalProperties": False, "x-swift": False,
                 "description": "InternVL tiling knobs. Saved with the run and re-applied by infer/export. They "
                                "reach swift as MAX_NUM, INPUT_SIZE, VIDEO_MAX_NUM, VIDEO_SEGMENTS (a value the "
                                "user sets in the environment wins, as in swift); for -HF models (template "
                                "internvl_hf) max_num is applied to the processor's max_patches and the others "
                                "are refused.",
                 "properties": {
                     "max_num": {"type": "integer", "minimum": 1, "maximum": 64,
                                 "description": "Max tiles per image (InternVL default 12); a thumbnail tile is "
                                                "added when an image uses more than one."},
                     "input_size": {"type": "integer", "minimum": 28, "multipleOf": 28,
                                    "description": "Tile size in pixels (448 for every InternVL3/3.5 checkpoint). "
                                                   "internvl_chat templates only."},
                     "video_max_num": {"type": "integer", "minimum": 1, "maximum": 64,
                                       "description": "Max tiles per video frame (default 1). internvl_chat "
                                                      "templates only."},
                     "video_segments": {"type": "integer", "minimum": 1, "maximum": 512,
                                        "description": "Frames sampled per video (default 8). internvl_chat "
                                                       "templates only."}}},
    "nproc_per_node": {"type": "integer", "minimum": 1, "maximum": 64, "x-swift": False,   # GPUs one node holds
                       "description": "GPUs (processes) per node: >1 runs torchrun data parallel through swift "
                                      "(NPROC_PER_NODE; the environment variable wins when set)."},
    "nnodes": {"type": "integer", "minimum": 1, "maximum": 4096, "x-swift": False,
               "description": "Nodes: >1 makes train.py print the command each node runs (NNODES, NODE_RANK, "
                              "MASTER_ADDR, MASTER_PORT), or write a Slurm job script (--slurm). The nodes then "
                              "also get a collective timeout: ddp_timeout 3600 unless the recipe sets it."},
    "rdzv_timeout": {"type": "integer", "minimum": 1, "maximum": 86400, "x-swift": False,
                     "description": "Multi-node runs: seconds node 0 waits for every node to join (and a node "
                                    "waits to reach node 0) before failing with a named error; torchrun's static "
                                    "rendezvous timeout (PET_RDZV_CONF=timeout=N). Default 600."},
    "stop_on_nan": {"type": "integer", "minimum": 0, "x-swift": False,
                    "description": "Stop the run after this many consecutive logged steps with a NaN or infinite "
                                   "loss (0 = only warn). Default 3."},
    "from_sft": {"type": "string", "minLength": 1, "x-swift": False,
                 "description": "Preference recipes: the SFT checkpoint (checkpoint-N/, or a run directory for its "
                                "last one) to start from and measure against, as swift documents: it sets both "
                                "adapters and ref_adapters to it, and a resume keeps it as the reference."},
    "train_type": {"type": "string", "x-alias-of": "tuner_type",
                   "description": "Removed in swift 4.x: renamed tuner_type. Accepted with a warning."},
}

# What the toolkit adds to swift's own description of a key: the InternVL choices, sane ranges, and the
# words our users need. Only constraints swift itself would enforce later (or that are nonsense) go here.
CURATED: dict[str, dict[str, Any]] = {
    "model": {"minLength": 1, "description": "Model id (ModelScope/HF) or local directory; it picks the route "
              "(model_type and template). `builtin:tiny-internvl3_5`, `builtin:tiny-internvl3` and "
              "`builtin:tiny-internvl-hf` are the toolkit's tiny offline models."},
    "model_type": {"enum": ["internvl", "internvl_chat"],
                   "description": "swift model type: internvl = transformers-native -HF checkpoints; internvl_chat "
                                  "= original remote-code checkpoints. Taken from the model when not set; when "
                                  "set it must agree."},
    "template": {"enum": ["internvl_hf", "internvl2_5", "internvl3_5", "internvl3_5_gpt"],
                 "description": "swift template: internvl_hf for -HF models; internvl2_5 for InternVL3; internvl3_5 "
                                "for InternVL3.5; internvl3_5_gpt for the GPT-OSS variant. Taken from the model "
                                "when not set; when set it must agree."},
    "dataset": {"minItems": 1, "description": "Training data: local JSONL/JSON/CSV files (`path` or `path#N` to "
                "sample N) or hub dataset ids (`org/name[:subset][#N]`)."},
    "val_dataset": {"minItems": 1},
    "max_length": {"minimum": 1, "description": "Max tokens per sample, image tokens included (InternVL: 256 per "
                                                "448-px tile)."},
    "split_dataset_ratio": {"minimum": 0, "maximum": 1},
    "lora_rank": {"minimum": 1}, "lora_alpha": {"exclusiveMinimum": 0}, "lora_dropout": {"minimum": 0, "maximum": 1},
    "target_modules": {"minItems": 1}, "learning_rate": {"exclusiveMinimum": 0},
    "vit_lr": {"exclusiveMinimum": 0}, "aligner_lr": {"exclusiveMinimum": 0},
    "num_train_epochs": {"exclusiveMinimum": 0}, "max_steps": {"minimum": -1},
    "per_device_train_batch_size": {"minimum": 1}, "per_device_eval_batch_size": {"minimum": 1},
    "gradient_accumulation_steps": {"minimum": 1}, "weight_decay": {"minimum": 0},
    "warmup_ratio": {"minimum": 0, "maximum": 1}, "warmup_steps": {"minimum": 0}, "max_grad_norm": {"minimum": 0},
    "eval_steps": {"exclusiveMinimum": 0}, "save_steps": {"exclusiveMinimum": 0}, "logging_steps": {"exclusiveMinimum": 0},
    "save_total_limit": {"minimum": 1}, "dataloader_num_workers": {"minimum": 0}, "dataset_num_proc": {"minimum": 1},
    "output_dir": {"minLength": 1, "description": "Parent directory of runs: each run writes to "
                                                  "OUTPUT_DIR/<recipe>-<timestamp>/."},
    "rlhf_type": {"description": "Preference tuning: a recipe that sets rlhf_type runs `swift rlhf` instead of "
                  "`swift sft`. dpo for DPO; InternVL's MPO is dpo with loss_type [sigmoid, bco_pair, sft] and "
                  "loss_weights [0.8, 0.2, 1.0]. (orpo, simpo, kto, cpo, rm, ppo, grpo, gkd: swift's others.)"},
    "beta": {"minimum": 0}, "loss_weights": {"minItems": 1},
    "deepspeed": {"description": "DeepSpeed: a preset (zero0, zero1, zero2, zero2_offload, zero3, zero3_offload), "
                                 "a JSON config file, or the config itself as a mapping."},
}
# swift arguments that carry credentials: known to the schema (so the message is precise) but refused,
# because secrets never go in a recipe, which is saved next to the checkpoints and published.
SECRETS = ("hub_token", "swanlab_token", "swanlab_secret")
# Plain `str` fields whose real choices live in an enum elsewhere.
STR_CHOICES = {"lr_scheduler_type": ("transformers.trainer_utils", "SchedulerType"),
               "tuner_type": ("swift.arguments.base_args.base_args", "get_supported_tuners")}
# The keys a recipe shows first, in this order (the rest follow in swift's dataclass order).
FIRST = ("model", "model_type", "template", "torch_dtype", "attn_impl", "check_model", "use_hf", "dataset",
         "val_dataset", "split_dataset_ratio", "system", "max_length", "truncation_strategy", "lazy_tokenize",
         "streaming", "packing", "padding_free", "dataset_num_proc", "dataloader_num_workers",
         "load_from_cache_file", "dataset_shuffle", "data_seed", "tuner_type", "lora_rank", "lora_alpha",
         "lora_dropout", "target_modules", "modules_to_save", "use_rslora", "use_dora", "freeze_vit",
         "freeze_aligner", "freeze_llm", "vit_lr", "aligner_lr", "num_train_epochs", "max_steps",
         "per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
         "learning_rate", "weight_decay", "lr_scheduler_type", "warmup_ratio", "warmup_steps", "max_grad_norm",
         "seed", "bf16", "fp16", "gradient_checkpointing", "vit_gradient_checkpointing", "deepspeed", "fsdp",
         "eval_strategy", "eval_steps", "save_strategy", "save_steps", "save_total_limit", "save_only_model",
         "logging_steps", "output_dir", "add_version", "report_to")
_DOC_ARG = re.compile(r"^\s{4,}(\w+) \(([^)]*)\):\s*(.*)$")
_LIST_LITERAL = re.compile(r"\[('[^'\]]*'(?:, '[^'\]]*')+)\]")


def _doc_help(classes: list[type]) -> dict[str, str]:
    """`name (type): text` entries of the Args sections of swift's argument class docstrings."""
    out: dict[str, str] = {}
    for cls in classes:
        current = None
        for line in (cls.__doc__ or "").splitlines():
            m = _DOC_ARG.match(line)
            if m:
                current = m.group(1)
                out.setdefault(current, m.group(3).strip())
            elif current and line.strip() and out.get(current) is not None and line.startswith(" " * 12):
                if not out[current].endswith(line.strip()):
                    out[current] = f"{out[current]} {line.strip()}"
            else:
                current = None
    return out


def _json_type(tp: Any) -> dict[str, Any]:
    """JSON Schema of a dataclass field's type annotation."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        return {"type": "null"}
    if origin is typing.Literal:
        return {"enum": [a for a in args]}
    if origin in (typing.Union, types.UnionType):
        parts = [_json_type(a) for a in args]
        enums = [v for p in parts for v in p.get("enum", [])]
        kinds = sorted({k for p in parts for k in ([p["type"]] if isinstance(p.get("type"), str)
                                                     else p.get("type", []))})
        if enums and all("enum" in p or p.get("type") in ("null", "string") for p in parts) and \
                any(isinstance(a, type) and issubclass(a, enum.Enum) for a in args):
            # `SomeEnum | str`: transformers turns the string into the enum and refuses anything else
            return {"enum": enums + ([None] if "null" in kinds else [])}
        if enums and set(kinds) <= {"null"}:
            return {"enum": enums + ([None] if kinds else [])}
        if enums:
            return {"anyOf": [{"enum": enums}, {"type": kinds[0] if len(kinds) == 1 else kinds}]}
        if any(p == {} for p in parts):
            return {}
        items = [p for p in parts if p.get("type") == "array"]
        if items and len(kinds) <= 2:
            return dict(items[0], type=kinds if len(kinds) > 1 else "array")
        return {"type": kinds[0] if len(kinds) == 1 else kinds}
    if origin in (list, typing.List, tuple):
        item = _json_type(args[0]) if args else {}
        return {"type": "array", "items": item} if item else {"type": "array"}
    if origin in (dict, typing.Dict) or tp in (dict, typing.Dict):
        return {"type": "object"}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp in (str, Path) or tp is typing.Any:
        return {"type": "string"} if tp is not typing.Any else {}
    return {"type": "string"}      # objects given by name or path (GenerationConfig, ParallelismConfig, ...)


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = field.default_factory()  # type: ignore[misc]
    else:
        return dataclasses.MISSING
    if isinstance(value, enum.Enum):
        value = value.value
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return dataclasses.MISSING
    return value


def _from_action(action: argparse.Action, field: dataclasses.Field, hint: Any) -> dict[str, Any]:
    """JSON Schema of what swift's command-line parser accepts for one field (what `swift sft` can take)."""
    from transformers.hf_argparser import string_to_bool
    nullable = field.default is None
    kind = action.type
    if action.choices:
        item: dict[str, Any] = {"enum": list(action.choices)}
    elif kind is string_to_bool or (kind is None and action.nargs == 0):
        item = {"type": "boolean"}
    elif kind in (int, float, str, Path):
        item = {"type": {int: "integer", float: "number"}.get(kind, "string")}
    elif isinstance(kind, type) and issubclass(kind, enum.Enum):
        item = {"enum": [m.value for m in kind]}
    else:       # a type the parser cannot build from a string (dict, ParallelismConfig): not for the CLI
        return {**_json_type(hint), "x-swift-cli": False}
    if action.nargs in ("+", "*"):
        prop = {"type": ["array", "null"] if nullable else "array", "items": item}
    elif "enum" in item:
        prop = {"enum": item["enum"] + ([None] if nullable and None not in item["enum"] else [])}
    else:
        kinds = [item["type"]]
        if item["type"] == "string" and "dict" in _type_name(hint):
            kinds.append("object")            # a mapping in the recipe, passed as the JSON swift parses
        prop = {"type": kinds + ["null"] if nullable else (kinds if len(kinds) > 1 else kinds[0])}
    return prop


def swift_properties(command: str = "sft") -> dict[str, dict[str, Any]]:
    """Schema properties of every field of `swift sft`'s (or `swift rlhf`'s) arguments, as swift's own parser
    reads them."""
    import importlib

    from swift import RLHFArguments, SftArguments
    from swift.utils.utils import _patch_get_type_hints
    from transformers import HfArgumentParser

    cls = {"sft": SftArguments, "rlhf": RLHFArguments}[command]
    with _patch_get_type_hints():       # what swift.utils.parse_args does before it parses the command line
        parser = HfArgumentParser([cls])
    actions: dict[str, argparse.Action] = {}
    for action in parser._actions:
        if action.option_strings and not action.option_strings[0].startswith("--no_"):
            actions.setdefault(action.dest, action)
    hints = typing.get_type_hints(cls)
    help_text = _doc_help([c for c in cls.__mro__ if c is not object])
    props: dict[str, dict[str, Any]] = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.name not in actions:
            continue
        hint = hints.get(f.name, f.type)
        prop = _from_action(actions[f.name], f, hint)
        if f.name in STR_CHOICES:
            module, name = STR_CHOICES[f.name]
            found = getattr(importlib.import_module(module), name)
            choices = [m.value for m in found] if isinstance(found, type) else sorted(found())
            prop = {"enum": choices}
        default = _default(f)
        if default is not dataclasses.MISSING:
            prop["default"] = default
        text = (f.metadata or {}).get("help") or help_text.get(f.name)
        if text:    # a list printed from a set changes order between runs: sort it
            prop["description"] = _LIST_LITERAL.sub(lambda m: "[" + ", ".join(sorted(m.group(1).split(", "))) + "]",
                                                    " ".join(str(text).split()))
        prop["x-swift-type"] = _type_name(hint)
        props[f.name] = prop
    return props


def _with_rlhf(sft: dict[str, dict[str, Any]], rlhf: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """sft's properties, then rlhf's own (x-command: rlhf); a shared key rlhf reads otherwise gets x-rlhf."""
    out = {}
    for key, prop in sft.items():
        other = {k: v for k, v in rlhf[key].items() if k != "description"}
        mine = {k: v for k, v in prop.items() if k != "description"}
        out[key] = prop if other == mine else {**prop, "x-rlhf": rlhf[key]}
    for key, prop in rlhf.items():
        if key not in sft:
            out[key] = {**prop, "x-command": "rlhf"}
    return out


def generate() -> dict[str, Any]:
    import swift
    version = swift.__version__
    swift_props = _with_rlhf(swift_properties("sft"), swift_properties("rlhf"))
    properties: dict[str, dict[str, Any]] = {}
    for key in ("extends", "description", "internvl", "nproc_per_node", "nnodes", "rdzv_timeout", "stop_on_nan",
                "from_sft"):
        properties[key] = TOOLKIT[key]
    for key in [*FIRST, *swift_props]:
        if key in properties or key not in swift_props:
            continue
        prop = dict(swift_props[key])
        curated = CURATED.get(key, {})
        if "enum" in curated:
            prop.pop("type", None)
            prop.pop("anyOf", None)
        prop.update(curated)
        if key in SECRETS:
            prop["x-secret"] = True
        properties[key] = prop
    properties["train_type"] = TOOLKIT["train_type"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://internvl-kit/recipe.schema.json",
        "title": "internvl-kit recipe",
        "description": f"A LoRA recipe: every argument of swift {version}'s `swift sft` and `swift rlhf` "
                       f"(generated from SftArguments and RLHFArguments by internvl_kit/recipe/schema_gen.py; "
                       f"x-command: rlhf marks the keys only `swift rlhf` reads, x-rlhf how it reads a shared "
                       f"key) plus the toolkit's own keys.",
        "x-swift-version": version,
        "type": "object",
        "additionalProperties": False,
        "required": ["model", "dataset"],
        "properties": properties,
    }


def render() -> str:
    return json.dumps(generate(), indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m internvl_kit.recipe.schema_gen", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed schema differs from a fresh one")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        stale = SCHEMA_PATH.read_text(encoding="utf-8") != text
        print(f"{SCHEMA_PATH}: {'stale: regenerate it' if stale else 'current'}")
        return int(stale)
    SCHEMA_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}: {len(json.loads(text)['properties'])} keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
