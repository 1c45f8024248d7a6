"""Check a resolved recipe against the schema and the rules the schema cannot express."""
from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from ..fileio import checkpoints
from .errors import Problem
from .loader import Resolved
from .schema import command_of, known_keys, rlhf_only, schema

# Which templates belong to which swift model_type (facts: ms-swift 4.6 registry).
TEMPLATES_BY_MODEL_TYPE = {
    "internvl": ("internvl_hf",),
    "internvl_chat": ("internvl2_5", "internvl3_5", "internvl3_5_gpt"),
}
HF_TEMPLATE = "internvl_hf"
# Knobs the -HF processor path has no way to honour: refused rather than silently ignored.
HF_REFUSED_KNOBS = {
    "input_size": "the -HF processor's tile size is fixed by the checkpoint's preprocessor config",
    "video_max_num": "the -HF video processor always uses one tile per frame",
    "video_segments": "the -HF video processor samples frames by its own settings",
}
SECRET_HINTS = ("token", "secret", "password", "api_key")
# swift 4.6's DeepSpeed presets (swift/config/*.json); anything else must be a JSON config file.
DEEPSPEED_PRESETS = ("zero0", "zero1", "zero2", "zero2_offload", "zero3", "zero3_offload")
DEEPSPEED_FILE_LIMIT = 1 << 20      # a DeepSpeed config is a few KiB; more is some other file
LORA_KEYS = ("lora_rank", "lora_alpha", "lora_dropout", "use_rslora", "use_dora")


def _dotted(path) -> str:
    return ".".join(str(p) for p in path)


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _bounds(sch: dict[str, Any]) -> str:
    parts = []
    for k, op in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if k in sch:
            parts.append(f"{op} {sch[k]}")
    if "multipleOf" in sch:
        parts.append(f"a multiple of {sch['multipleOf']}")
    return " and ".join(parts)


def _schema_problems(res: Resolved) -> list[Problem]:
    problems = []
    validator = Draft202012Validator(schema(command_of(res.data)))
    for err in sorted(validator.iter_errors(res.data), key=lambda e: list(map(str, e.absolute_path))):
        path = tuple(str(p) for p in err.absolute_path)
        src, line = res.where(path)
        inst, sch = err.instance, err.schema if isinstance(err.schema, dict) else {}
        if err.validator == "additionalProperties":
            allowed = known_keys(path)
            for extra in sorted(set(inst) - set(allowed)):
                key = path + (extra,)
                s, ln = res.where(key)
                sugg = _suggest(extra, allowed)
                if any(h in extra.lower() for h in SECRET_HINTS):
                    msg = "unknown key; secrets never go in recipes: set MODELSCOPE_API_TOKEN in the environment"
                elif sugg:
                    msg = f"unknown key{sugg}"
                else:
                    msg = "unknown key (list the allowed ones with: python train.py --keys PATTERN)"
                problems.append(Problem(s, ln, _dotted(key), msg))
            continue
        if err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else err.message
            problems.append(Problem(src, None, _dotted(path + (missing,)), "required key is missing"))
            continue
        given = f"got {inst!r} ({type(inst).__name__})"
        if err.validator == "type":
            msg = f"expected {err.validator_value}, {given}"
        elif err.validator == "enum":
            choices = [str(v) for v in err.validator_value if v is not None]
            msg = f"{inst!r} is not allowed{_suggest(str(inst), choices)}; allowed: {', '.join(choices)}"
        elif err.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
            msg = f"must be {_bounds(sch)}, {given}"
        elif err.validator in ("minItems", "minLength"):
            msg = f"must not be empty, {given}"
        else:
            msg = f"{err.message}"
        problems.append(Problem(src, line, _dotted(path), msg))
    return problems


def _route_problems(res: Resolved, add) -> bool:
    """Fill model_type/template from the model's route; False (and problems) if the recipe contradicts it."""
    from ..models import routes
    d, model = res.data, res.data.get("model")
    found = routes.route(model) if isinstance(model, str) and model else None
    agrees = True
    for key in ("model_type", "template"):
        want = getattr(found, key) if found else None
        if key not in d:
            if want:
                d[key] = want
                res.origins[(key,)] = (f"the model's route ({found.source})", None)
            else:
                add(key, f"required for {model!r}, which is neither a known InternVL id (python -m "
                         f"internvl_kit.models.family) nor a local checkpoint: set model_type and template "
                         f"(internvl_chat with internvl2_5 / internvl3_5 / internvl3_5_gpt for the original "
                         f"checkpoints, internvl with internvl_hf for -HF ones)")
        elif want and d[key] != want:
            agrees = False
            add(key, f"{model} takes model_type {found.model_type!r} with template {found.template!r} "
                     f"({found.source}), not {d[key]!r}: remove {key} from the recipe to take it from the model")
    return agrees


def _value_problems(res: Resolved, path: tuple[str, ...], value: Any, add) -> None:
    """Values swift would mis-read: NaN/inf numbers, and list items that argparse would take for flags."""
    key = ".".join(path)
    if isinstance(value, dict):
        for k, v in value.items():
            _value_problems(res, path + (str(k),), v, add)
    elif isinstance(value, float) and not math.isfinite(value):
        add(key, f"{value} is not a finite number")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str) and item.startswith("-"):
                add(key, f"list item {item!r} starts with '-': swift would read it as a flag; give a path "
                         f"like ./{item}")
            elif isinstance(item, float) and not math.isfinite(item):
                add(key, f"{item} is not a finite number")


def _deepspeed_file_problem(path: Path) -> str | None:
    """What swift's json.load of a DeepSpeed config file would fail on, found now rather than 40 s into the launch."""
    import json
    try:
        with open(path, "rb") as f:
            raw = f.read(DEEPSPEED_FILE_LIMIT + 1)
    except OSError as e:
        return f"{path}: cannot be read ({e.strerror or e})"
    if len(raw) > DEEPSPEED_FILE_LIMIT:
        return f"{path}: larger than {DEEPSPEED_FILE_LIMIT // 1024} KiB, not a DeepSpeed config"
    try:
        config = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return f"{path}: not UTF-8 text, not a DeepSpeed JSON config"
    except json.JSONDecodeError as e:
        return f"{path}:{e.lineno}:{e.colno}: not valid JSON ({e.msg}); DeepSpeed configs are JSON objects"
    if not isinstance(config, dict):
        return (f"{path}: holds a JSON {type(config).__name__}, but a DeepSpeed config is a JSON object "
                f"({{\"zero_optimization\": {{\"stage\": 2}}, ...}})")
    return None


def _expand_from_sft(res: Resolved, add) -> None:
    """from_sft: CHECKPOINT -> adapters and ref_adapters both [CHECKPOINT] (a run directory: its last one)."""
    d = res.data
    value = d.pop("from_sft")
    if d.get("rlhf_type") is None:
        add("from_sft", "from_sft chains an SFT run into preference tuning: set rlhf_type (dpo; see "
                        "recipes/*-mpo.yaml), or to continue SFT from a checkpoint set adapters")
        return
    if d.get("adapters") or d.get("ref_adapters"):
        add("from_sft", "from_sft sets adapters and ref_adapters itself: remove those, or from_sft")
        return
    path = Path(str(value)).expanduser()
    if path.is_dir() and not (path / "adapter_config.json").is_file():
        adapters = [c for c in checkpoints(path) if (c / "adapter_config.json").is_file()]
        path = adapters[-1] if adapters else path
    if not (path / "adapter_config.json").is_file():
        add("from_sft", f"{value!r} is no LoRA checkpoint (no adapter_config.json) nor a run directory holding one")
        return
    d["adapters"], d["ref_adapters"] = [str(path.resolve())], [str(path.resolve())]    # two lists: no YAML alias
    for key in ("adapters", "ref_adapters"):
        res.origins[(key,)] = res.where(("from_sft",))


def _rule_problems(res: Resolved, warnings: list[str]) -> list[Problem]:
    d, problems = res.data, []

    def add(key: str, msg: str) -> None:
        src, line = res.where(tuple(key.split(".")))
        problems.append(Problem(src, line, key, msg))

    if "train_type" in d:
        if "tuner_type" in d:
            add("train_type", "both train_type (removed in swift 4.x) and tuner_type are set; keep only tuner_type")
        else:
            d["tuner_type"] = d.pop("train_type")
            src, line = res.where(("train_type",))
            res.origins[("tuner_type",)] = (src, line)
            warnings.append(f"{src}{f':{line}' if line else ''}: train_type is the swift 3.x name; "
                            f"using tuner_type: {d['tuner_type']} (rename it in the recipe)")
    if "from_sft" in d:
        _expand_from_sft(res, add)
    agrees = _route_problems(res, add)
    mt, tpl = d.get("model_type"), d.get("template")
    if agrees and mt in TEMPLATES_BY_MODEL_TYPE and isinstance(tpl, str) and tpl not in TEMPLATES_BY_MODEL_TYPE[mt]:
        add("template", f"template {tpl!r} does not fit model_type {mt!r}; "
                        f"allowed: {', '.join(TEMPLATES_BY_MODEL_TYPE[mt])}")
    knobs = d.get("internvl") if isinstance(d.get("internvl"), dict) else {}
    if tpl == HF_TEMPLATE:
        for knob, why in HF_REFUSED_KNOBS.items():
            if knob in knobs:
                add(f"internvl.{knob}", f"not supported with template internvl_hf ({why}); "
                                        f"remove it, or use the original checkpoint with an internvl_chat template")
    _value_problems(res, (), d, add)
    command = command_of(d)
    props = schema(command)["properties"]
    for key in d:
        if (props.get(key) or {}).get("x-swift-cli") is False:
            add(key, f"swift {command} cannot take {key} on its command line (its parser cannot build "
                     f"{props[key].get('x-swift-type')} from text), so no recipe can set it")
        if command == "sft" and rlhf_only(key):
            add(key, f"only `swift rlhf` (preference tuning) reads {key}: set rlhf_type (dpo; InternVL's MPO is "
                     f"dpo with a loss mix, see recipes/*-mpo.yaml) to make this a preference recipe, or remove {key}")
        if (props.get(key) or {}).get("x-secret"):
            add(key, "secrets never go in recipes (they are saved with every run and checkpoint): set "
                     "MODELSCOPE_API_TOKEN (or the tracker's own variable) in the environment")
    ds = d.get("deepspeed")
    if isinstance(ds, str) and ds not in DEEPSPEED_PRESETS and not (ds.endswith(".json") and Path(ds).is_file()):
        add("deepspeed", f"{ds!r} is neither a DeepSpeed preset ({', '.join(DEEPSPEED_PRESETS)}) nor an existing "
                         f".json config file{_suggest(ds, list(DEEPSPEED_PRESETS))}")
    elif isinstance(ds, str) and ds.endswith(".json"):
        problem = _deepspeed_file_problem(Path(ds))
        if problem:
            add("deepspeed", problem)
    if d.get("deepspeed") and d.get("fsdp"):
        add("fsdp", "deepspeed and fsdp are both set; choose one")
    if d.get("fp16") is True and d.get("bf16") is True:
        add("fp16", "fp16 and bf16 are both true; choose one")
    if d.get("tuner_type", "lora") == "full":
        for k in LORA_KEYS:
            if k in d:
                src, line = res.where((k,))
                warnings.append(f"{src}{f':{line}' if line else ''}: {k} has no effect with tuner_type full")
    return problems


def validate(res: Resolved) -> tuple[list[Problem], list[str]]:
    """Return (problems, warnings); normalises the train_type alias in place."""
    warnings: list[str] = []
    problems = _rule_problems(res, warnings)
    problems += _schema_problems(res)
    return problems, warnings
