"""What we promise about swift, checked against the installed swift (no model training here)."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from internvl_kit.models import builtin
from internvl_kit.recipe import is_swift_key, load_recipe, schema
from internvl_kit.train.swift_cmd import PLUGIN_PATH, train_command

RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if "base" not in p.parts)


@pytest.fixture(scope="module")
def parsers():
    """swift's own parser of each command: `swift sft` reads SftArguments, `swift rlhf` RLHFArguments."""
    from swift import RLHFArguments, SftArguments
    from transformers import HfArgumentParser
    return {name: (HfArgumentParser([cls]), {f.name for f in dataclasses.fields(cls)})
            for name, cls in (("sft", SftArguments), ("rlhf", RLHFArguments))}


@pytest.fixture(scope="module")
def sft_parser(parsers):
    return parsers["sft"]


def test_every_swift_key_of_the_schema_is_an_argument_of_its_command(parsers):
    """The keys marked x-command: rlhf are exactly those `swift sft` lacks and `swift rlhf` has."""
    props = schema()["properties"]
    keys = [k for k in props if is_swift_key(k)]
    rlhf_only = [k for k in keys if props[k].get("x-command") == "rlhf"]
    assert keys and [k for k in keys if k not in parsers["rlhf"][1]] == []
    assert [k for k in keys if k not in parsers["sft"][1]] == rlhf_only
    assert {"rlhf_type", "beta", "loss_weights", "ref_adapters", "rpo_alpha"} <= set(rlhf_only)
    assert "items" in schema("rlhf")["properties"]["loss_type"] and "items" not in props["loss_type"]


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_argv_is_accepted_by_swifts_parser(recipe, parsers, tmp_path):
    """Each recipe's argv, parsed by the parser of the command it runs (a preference recipe: swift rlhf)."""
    r = load_recipe(recipe)
    parser, _ = parsers[r.command]
    data, _ = builtin.resolve_recipe_refs(r.data, materialize=False)
    cmd = train_command(r, data, tmp_path / "run", resume_from=tmp_path / "run" / "checkpoint-1")
    assert cmd.subcommand == r.command
    parsed, remaining = parser.parse_known_args(cmd.args)
    assert remaining == []
    for key in ("rlhf_type", "loss_type", "loss_weights", "beta", "rpo_alpha"):
        if key in r.data:
            assert getattr(parsed, key) == r.data[key], key


def test_hf_plugin_applies_max_num_to_swifts_own_template(tiny_model):
    """Without the plugin swift's internvl_hf template ignores MAX_NUM; with it, the tile count obeys."""
    code = f"""
import os, sys
from PIL import Image
from swift import get_processor, get_template
if sys.argv[1] == 'plugin':
    import importlib.util
    spec = importlib.util.spec_from_file_location('plugin', {str(PLUGIN_PATH)!r})
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
proc = get_processor({str(tiny_model)!r}, model_type='internvl', download_model=False)
tpl = get_template(proc, template_type='internvl_hf')
enc = tpl.encode({{'messages': [{{'role': 'user', 'content': '<image>hi'}}, {{'role': 'assistant', 'content': 'ok'}}],
                  'images': [Image.new('RGB', (400, 100), 'red')]}})
print('TILES', enc['pixel_values'].shape[0], len(enc['input_ids']))
"""
    def tiles(mode: str) -> tuple[int, int]:
        out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "MAX_NUM": "2"}, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-2000:]
        line = next(x for x in out.stdout.splitlines() if x.startswith("TILES"))
        return int(line.split()[1]), int(line.split()[2])

    without, with_plugin = tiles("none"), tiles("plugin")
    assert without[0] == 5                      # 4:1 image, processor default 12 -> 4 tiles + thumbnail
    assert with_plugin[0] == 3                  # MAX_NUM=2 -> 2 tiles + thumbnail
    assert without[1] - with_plugin[1] == 2 * 4  # 4 image tokens per tile


def test_integral_floats_and_negative_exponents_reach_swifts_parser_as_written(sft_parser, tmp_path):
    """lora_rank 8.0 / 1e3 (integers to JSON Schema, floats to YAML) and adam_epsilon -1e-8 (argparse reads
    `-1e-08` after a flag as another flag): swift's own parser must take the argv and see the values."""
    parser, _ = sft_parser
    r = load_recipe(ROOT / "recipes/tiny-demo.yaml", ["lora_rank=8.0", "lora_alpha=1e3", "adam_epsilon=-1e-8",
                                                      "seed=-3", "model_kwargs={1: 2, a: {true: 3}}"])
    data, _ = builtin.resolve_recipe_refs(r.data, materialize=False)
    cmd = train_command(r, data, tmp_path / "run")
    assert "--lora_rank" in cmd.args and cmd.args[cmd.args.index("--lora_rank") + 1] == "8"
    assert "--adam_epsilon=-1e-08" in cmd.args
    assert cmd.args[cmd.args.index("--model_kwargs") + 1] == '{"1": 2, "a": {"true": 3}}'
    parsed, remaining = parser.parse_known_args(cmd.args)
    assert remaining == []
    assert (parsed.lora_rank, parsed.lora_alpha, parsed.adam_epsilon, parsed.seed) == (8, 1000, -1e-8, -3)


def _samples(prop: dict) -> list:
    """Values of every kind the schema lets a recipe give this key, edge cases included: integral floats for
    integers, negative exponents, dash-led strings, empty lists, dicts with non-string keys, null."""
    types = prop.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    low = prop.get("minimum", prop.get("exclusiveMinimum", -10))
    out: list = [v for v in prop.get("enum", [])]
    for t in types:
        item = prop.get("items", {})
        out += {"boolean": [True, False],
                "integer": [3, 8.0, 1e3] + ([-3] if low < -3 else []),
                "number": [0.5, 2e-5, 1e3] + ([-1e-8, -2.5] if low < -2.5 else []),
                "string": ["x y", "-x", "a=b", "{'a': 1}"],
                "object": [{"a": 1, 1: 2, "b": {True: [1, "-c"]}}],
                "array": [[], ["a", "b"] if item.get("type") == "string" else [0.5, 1e-3] if item.get("type") == "number"
                          else [1, 2] if item.get("type") == "integer" else item.get("enum", [])[:2]],
                "null": [None]}.get(t, [])
    return out


def _expected(value, parsed_default, prop: dict):
    import json
    from internvl_kit.train.swift_cmd import _json_keys
    if value is None or value == []:
        return parsed_default
    types = prop.get("type", [])
    if isinstance(value, float) and value.is_integer() and "integer" in types and "number" not in types:
        return int(value)                   # what swift's int() must see for an integer key
    if isinstance(value, dict):
        return json.dumps(_json_keys(value), sort_keys=True)
    return value


def _plain(parsed):
    """A parsed value as recipe data: enums by value, paths as text."""
    from enum import Enum
    if isinstance(parsed, list):
        return [_plain(p) for p in parsed]
    return parsed.value if isinstance(parsed, Enum) else str(parsed) if isinstance(parsed, Path) else parsed


SKIP = {"output_dir", "add_version", "external_plugins", "model", "model_type", "template"}


@pytest.mark.parametrize("command", ["sft", "rlhf"])
def test_every_schema_type_round_trips_through_swifts_parser(command, parsers):
    """Generated over the whole schema, not a hand-picked list: each value a recipe may give a swift key
    reaches swift's own HfArgumentParser as that value (an empty list as swift's default, report_to as none),
    for `swift sft` and for `swift rlhf`, each with the schema as that command reads it."""
    from internvl_kit.train.swift_cmd import key_args
    parser, _ = parsers[command]
    defaults = vars(parser.parse_args([]))
    props = schema(command)["properties"]
    wrong, checked = [], 0
    for key, prop in props.items():
        if not is_swift_key(key) or key in SKIP or prop.get("x-swift-cli") is False or prop.get("x-secret"):
            continue
        if command == "sft" and prop.get("x-command") == "rlhf":
            continue
        for value in _samples(prop):
            argv = key_args(key, value, prop)
            try:
                parsed, rest = parser.parse_known_args(argv)
                got = getattr(parsed, key)
            except SystemExit:
                wrong.append(f"{key}={value!r}: swift's parser refused {argv}")
                continue
            checked += 1
            want = ["none"] if key == "report_to" and value == [] else _expected(value, defaults[key], prop)
            ok = _plain(got) == want and type(_plain(got)) is type(want)
            if rest or not ok:
                wrong.append(f"{key}={value!r}: argv {argv} read back as {got!r} (rest {rest}), wanted {want!r}")
    assert checked > 600 and wrong == [], "\n".join(wrong[:40]) + f"\n({len(wrong)} in all)"


@pytest.mark.parametrize("kind", ["mpo", "dpo"])
def test_the_printed_preference_command_is_read_by_swifts_rlhf_parser(kind, parsers):
    """`train.py recipes/internvl3_5-8b-mpo.yaml --dry-run` prints `swift rlhf ...`: swift's own RLHF parser
    reads it back to the recipe's loss mix, and no key is left over."""
    import shlex
    from conftest import run_cli
    out = run_cli("train.py", f"recipes/internvl3_5-8b-{kind}.yaml", "--dry-run")
    assert out.returncode == 0, out.stderr[-2000:]
    (line,) = [x for x in out.stdout.splitlines() if " swift rlhf " in f" {x} "]
    argv = shlex.split(line)
    args = argv[argv.index("rlhf") + 1:]
    parsed, rest = parsers["rlhf"][0].parse_known_args(args)
    assert rest == [] and parsed.rlhf_type == "dpo" and parsed.beta == 0.1
    if kind == "mpo":
        assert parsed.loss_type == ["sigmoid", "bco_pair", "sft"] and parsed.loss_weights == [0.8, 0.2, 1.0]
    else:
        assert parsed.loss_type is None and parsed.rpo_alpha is None
    with pytest.raises(SystemExit):                  # and `swift sft` would refuse it
        parsers["sft"][0].parse_args(args)
