"""Checks run before swift is launched: everything that can fail on CPU fails here, with a fix.

This is the hook train.py calls; the dataset checks of data_tools plug in here.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCAL_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".txt")
_SAMPLE = re.compile(r"#\d+$")      # swift's `path#N` sampling suffix


@dataclass(frozen=True)
class Finding:
    severity: str   # "error" | "warning"
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.message}"


def local_dataset_path(entry: str) -> Path | None:
    """The file a dataset entry names, or None for a hub id (org/name[:subset][#N])."""
    bare = _SAMPLE.sub("", entry)
    p = Path(bare).expanduser()
    if p.suffix.lower() in LOCAL_SUFFIXES or bare.startswith(("/", "./", "../", "~")) or p.exists():
        return p
    return None


def check_datasets(data: dict[str, Any], recipe_file: str, pending: set[str]) -> list[Finding]:
    findings = []
    for key in ("dataset", "val_dataset"):
        for entry in data.get(key) or []:
            path = local_dataset_path(entry)
            if path is None or entry in pending:
                continue
            if not path.is_file():
                findings.append(Finding("error", f"{recipe_file}: {key}",
                                        f"dataset file {entry!r} not found (resolved to {path.resolve()}); "
                                        f"fix the path, or convert your data with `python -m data_tools convert`"))
    return findings


def check_output_dir(data: dict[str, Any], recipe_file: str) -> list[Finding]:
    """The run directory can be created: tried for real in the nearest existing parent (root passes
    os.access on /sys and /proc, where nothing can be created), and the probe removed again."""
    import tempfile
    out = Path(data.get("output_dir", "output")).expanduser()
    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    where = f"{recipe_file}: output_dir"
    if probe.exists() and not probe.is_dir():
        return [Finding("error", where, f"{probe} exists and is not a directory; set output_dir elsewhere")]
    try:
        Path(tempfile.mkdtemp(prefix=".internvl-kit-probe-", dir=probe)).rmdir()
    except OSError as e:
        return [Finding("error", where, f"cannot create the run directory under {probe} ({e.strerror or e}); "
                                        f"set output_dir to a writable directory")]
    return []


MAX_SHOWN = 20


def visible_gpus() -> int:
    """GPUs this process would see, without importing torch."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return len([d for d in env.split(",") if d.strip() and d.strip() != "-1"])
    import shutil
    import subprocess
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def check_parallel(data: dict[str, Any], recipe_file: str, model_parallel: bool) -> list[Finding]:
    """Several visible GPUs and no parallel setting: swift would silently shard the model over them
    (naive model parallelism, one GPU busy at a time) instead of training data parallel."""
    n = visible_gpus()
    nproc = int(data.get("nproc_per_node", 1))
    if n and nproc > n:
        return [Finding("error", f"{recipe_file}: nproc_per_node",
                        f"nproc_per_node={nproc} but {n} GPU(s) are visible (CUDA_VISIBLE_DEVICES); "
                        f"set nproc_per_node={n} or make more GPUs visible")]
    if n > 1 and nproc == 1 and int(data.get("nnodes", 1)) == 1 and not model_parallel:
        return [Finding("error", f"{recipe_file}: nproc_per_node",
                        f"{n} GPUs are visible but nproc_per_node is 1: swift would split the model across them "
                        f"(naive model parallelism) instead of training data parallel; set nproc_per_node={n} "
                        f"(with deepspeed=zero2/zero3 for large models), or CUDA_VISIBLE_DEVICES=0, or pass "
                        f"--model-parallel if that is what you want")]
    return []


def check_tile_size(data: dict[str, Any], knobs: dict[str, int], recipe_file: str) -> list[Finding]:
    """A local chat checkpoint trained for other tiles than swift will cut (INPUT_SIZE, default 448)
    fails inside the model (wrong number of image tokens); say so now, with the value to set."""
    import json
    config_path = Path(str(data.get("model", ""))).expanduser() / "config.json"
    if data.get("model_type") != "internvl_chat" or not config_path.is_file():
        return []
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    size = config.get("force_image_size") or (config.get("vision_config") or {}).get("image_size")
    wanted = knobs.get("input_size", 448)
    if size and int(size) != wanted:
        return [Finding("error", f"{recipe_file}: internvl.input_size",
                        f"the model's tiles are {size} px (force_image_size in {config_path}) but swift would cut "
                        f"{wanted}-px tiles; set internvl.input_size={size}")]
    return []


# report_to integrations -> the modules transformers imports for them (any one will do)
TRACKERS = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",), "swanlab": ("swanlab",),
            "mlflow": ("mlflow",), "clearml": ("clearml",), "comet_ml": ("comet_ml",), "dvclive": ("dvclive",),
            "trackio": ("trackio",), "azure_ml": ("azureml",), "dagshub": ("dagshub",), "flyte": ("flytekit",),
            "codecarbon": ("codecarbon",)}


def check_trackers(data: dict[str, Any], recipe_file: str) -> list[Finding]:
    """A report_to integration that is not installed stops transformers after the model has loaded."""
    from importlib.util import find_spec
    wanted = data.get("report_to") or []
    out = []
    for name in [wanted] if isinstance(wanted, str) else wanted:
        modules = TRACKERS.get(str(name))
        if modules and not any(find_spec(m) for m in modules):
            out.append(Finding("error", f"{recipe_file}: report_to", f"{name}: the {modules[0]} package is not "
                                                                   f"installed here (pip install {modules[0]})"))
    return out


def recipe_settings(recipe: str) -> dict[str, Any]:
    """data_tools' `--recipe` (entry point data_tools.recipe_reader): a recipe's data settings; ValueError
    with the recipe's own message when it does not load."""
    from ..models import builtin
    from ..recipe import RecipeError, load_recipe
    try:
        r = load_recipe(recipe)
    except RecipeError as e:
        raise ValueError(str(e)) from None
    data, _ = builtin.resolve_recipe_refs(r.data, materialize=False)
    files = [str(p) for key in ("dataset", "val_dataset") for e in data.get(key) or []
             if (p := local_dataset_path(e)) is not None]
    return {"model": data.get("model"), "template": data.get("template"), "max_length": data.get("max_length"),
            "max_num": r.knobs.get("max_num"), "input_size": r.knobs.get("input_size"),
            "video_segments": r.knobs.get("video_segments"), "video_max_num": r.knobs.get("video_max_num"),
            "files": files}


def check_data(data: dict[str, Any], knobs: dict[str, int], pending: set[str]) -> list[Finding]:
    """data_tools validation of every local dataset file: schema, roles, tags, images, token length."""
    from data_tools import context
    from data_tools.validate import Report, Validator

    files = [p for key in ("dataset", "val_dataset") for e in data.get(key) or []
             if (p := local_dataset_path(e)) is not None and p.is_file() and e not in pending]
    if not files:
        return []
    setup = context.make(model=data.get("model"), template=data.get("template"),
                         max_length=data.get("max_length"), max_num=knobs.get("max_num"),
                         input_size=knobs.get("input_size"), video_segments=knobs.get("video_segments"),
                         video_max_num=knobs.get("video_max_num"), files=files)
    report, issues = Report(), []
    validator = Validator(setup.options)
    for f in files:
        validator.validate_file(f, report, issues.append)
    out = [Finding(i.severity, f"{i.path}:{i.line}", f"{i.code}: {i.message}") for i in issues[:MAX_SHOWN]]
    if len(issues) > MAX_SHOWN:
        out.append(Finding("warning", "data", f"{len(issues) - MAX_SHOWN} more issue(s); see "
                                              f"`python -m data_tools validate {' '.join(map(str, files))}`"))
    if report.errors:
        out.append(Finding("error", "data", f"{report.errors} error(s) in {report.samples} samples; {setup.note}"))
    return out


def run(data: dict[str, Any], recipe_file: str, knobs: dict[str, int] | None = None,
        pending: set[str] = frozenset(), model_parallel: bool = False) -> list[Finding]:
    """All preflight findings for a recipe whose builtin refs are resolved (`pending`: not built yet)."""
    knobs = knobs or {}
    return (check_parallel(data, recipe_file, model_parallel) + check_tile_size(data, knobs, recipe_file)
            + check_datasets(data, recipe_file, pending) + check_output_dir(data, recipe_file)
            + check_trackers(data, recipe_file) + check_data(data, knobs, pending))
