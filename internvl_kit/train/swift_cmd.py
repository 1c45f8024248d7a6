"""Recipe -> the exact `swift sft` (or `swift rlhf`) argv and environment. Pure data: no swift import, no shell."""
from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..recipe import Recipe, command_of, is_swift_key, schema

PLUGIN_PATH = Path(__file__).with_name("swift_plugin.py")
# InternVL knob -> the environment variable swift's internvl templates read.
KNOB_ENV = {"max_num": "MAX_NUM", "input_size": "INPUT_SIZE",
            "video_max_num": "VIDEO_MAX_NUM", "video_segments": "VIDEO_SEGMENTS"}
# What swift's launcher reads from the environment (torchrun's world), with the tiling variables.
LAUNCH_VARS = ("NPROC_PER_NODE", "NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "PET_RDZV_CONF",
               *KNOB_ENV.values())
# Multi-node bounds: how long node 0 waits for the others to join (torchrun's own default, 600 s, which the
# recipe's rdzv_timeout replaces), and how long a collective may wait for a silent node (swift's ddp_timeout
# default is 18,000,000 s: one hour still covers a ZeRO-3 checkpoint save of the largest model).
RDZV_TIMEOUT_S = 600
MULTI_NODE_DDP_TIMEOUT_S = 3600
FIRST_KEYS = ("model", "model_type", "template")


@dataclass
class SwiftCommand:
    subcommand: str
    args: list[str]                                   # everything after `swift <subcommand>`
    env: dict[str, str] = field(default_factory=dict)  # variables set on top of the caller's

    def argv(self) -> list[str]:
        """What is executed: the swift entry point of this interpreter's environment."""
        exe = Path(sys.executable).with_name("swift")
        head = [str(exe)] if exe.is_file() else [sys.executable, "-m", "swift.cli.main"]
        return head + [self.subcommand] + self.args

    def shell(self, exact: bool = False) -> str:
        """A copy-pasteable rendering (env prefix + `swift ...`), everything quoted; `exact` names this
        interpreter's own swift (command.sh) instead of whatever `swift` is on PATH."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        head = self.argv()[:-len(self.args) - 1] if exact else ["swift"]
        cmd = shlex.join(head + [self.subcommand] + self.args)
        return f"{env} {cmd}" if env else cmd


def format_value(value: Any) -> list[str]:
    """swift's argument syntax: booleans as true/false, lists as several values, dicts as JSON."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, list):
        return [item for v in value for item in format_value(v)]
    if isinstance(value, dict):
        return [json.dumps(_json_keys(value), sort_keys=True)]
    return [str(value)]


def _json_keys(value: Any) -> Any:
    """JSON object keys are strings: YAML's `{1: 2, a: 3}` reaches swift as {"1": 2, "a": 3} (json.dumps would
    convert the 1 itself, but cannot sort keys of mixed types)."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else json.dumps(k): _json_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_keys(v) for v in value]
    return value


def _as_typed(value: Any, prop: dict[str, Any]) -> Any:
    """An integer key's value as swift's int() parser takes it: JSON Schema counts 8.0 and 1e3 as integers,
    YAML reads them as floats, and str() would hand swift `8.0` / `1000.0`."""
    types = prop.get("type")
    integer = types == "integer" or isinstance(types, list) and "integer" in types and "number" not in types
    if integer and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def key_args(key: str, value: Any, prop: dict[str, Any]) -> list[str]:
    """One recipe key as argv that swift's parser reads back to the same value (tested over the schema's types)."""
    if value is None:
        return []                      # swift's default, which is what null means in a recipe
    if value == [] and isinstance(value, list):
        # argparse's nargs="+" cannot take zero values: an empty list is swift's default, or for report_to
        # (default tensorboard) transformers' "none"
        return [f"--{key}", "none"] if key == "report_to" else []
    values = format_value(_as_typed(value, prop))
    if len(values) == 1 and values[0].startswith("-"):
        # one argv item: argparse reads `-x` and `-1e-08` (not `-1`) after a flag as another flag
        return [f"--{key}={values[0]}"]
    return [f"--{key}"] + values


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_env(data: dict[str, Any], node_rank: int | None = None, master_addr: str | None = None,
               master_port: int | None = None) -> dict[str, str]:
    """swift's launcher variables: NPROC_PER_NODE/NNODES make `swift sft` run torchrun. A single
    DeepSpeed process still needs a one-process world, or DeepSpeed looks for MPI."""
    nproc, nnodes = int(data.get("nproc_per_node", 1)), int(data.get("nnodes", 1))
    if nproc > 1 or nnodes > 1:
        env = {"NPROC_PER_NODE": str(nproc)}
        if nnodes > 1:           # torchrun reads PET_* as its own options: a node that never joins is an error
            env.update(NNODES=str(nnodes), NODE_RANK=str(node_rank or 0), MASTER_ADDR=master_addr or "127.0.0.1",
                       MASTER_PORT=str(master_port or 29500),
                       PET_RDZV_CONF=f"timeout={int(data.get('rdzv_timeout', RDZV_TIMEOUT_S))}")
        else:
            env["MASTER_PORT"] = str(master_port or free_port())
        return env
    if data.get("deepspeed"):
        return {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
                "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(master_port or free_port())}
    return {}


def needs_plugin(hf_max_num: bool, data: dict[str, Any], launch: dict[str, str]) -> bool:
    """The toolkit's swift plugin: for -HF tiling, `ID@split` dataset views, or DeepSpeed over several
    processes with no GPU."""
    from .preflight import visible_gpus
    from .split_views import view_name
    several = int(launch.get("NPROC_PER_NODE", 1)) * int(launch.get("NNODES", 1)) > 1
    views = any(view_name(str(e)) for k in ("dataset", "val_dataset") for e in data.get(k) or [])
    return hf_max_num or views or bool(data.get("deepspeed") and several and visible_gpus() == 0)


def knob_env(knobs: dict[str, int]) -> dict[str, str]:
    return {KNOB_ENV[k]: str(v) for k, v in sorted(knobs.items()) if k in KNOB_ENV}


def train_command(recipe: Recipe, data: dict[str, Any], run_dir: Path, resume_from: Path | None = None,
                launch: dict[str, str] | None = None) -> SwiftCommand:
    """Build `swift sft` (or `swift rlhf`, for a recipe with rlhf_type) for a validated recipe; `data` is
    recipe.data with builtin refs resolved."""
    command = command_of(data)
    if int(data.get("nnodes", 1)) > 1 and "ddp_timeout" not in data:      # swift's default is 208 days: a hung
        data = {**data, "ddp_timeout": MULTI_NODE_DDP_TIMEOUT_S}           # node would hold the others forever
    order = list(schema()["properties"])
    keys = [k for k in FIRST_KEYS if k in data]
    keys += sorted((k for k in data if is_swift_key(k) and k not in FIRST_KEYS
                    and k not in ("output_dir", "add_version", "external_plugins")), key=order.index)
    args: list[str] = []
    props = schema(command)["properties"]
    for k in keys:
        args += key_args(k, data[k], props.get(k, {}))
    # The toolkit names the run directory itself, so resume/infer/export can find it.
    args += ["--output_dir", str(run_dir), "--add_version", "false"]
    plugins = [str(p) for p in data.get("external_plugins") or []]        # one flag: a second would replace it
    if needs_plugin(recipe.is_hf and "max_num" in recipe.knobs, data, launch or {}):
        plugins.append(str(PLUGIN_PATH))
    if plugins:
        args += ["--external_plugins", *plugins]
    if resume_from is not None:
        args += ["--resume_from_checkpoint", str(resume_from)]
    return SwiftCommand(command, args, {**knob_env(recipe.knobs), **(launch or {})})
