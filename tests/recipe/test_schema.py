"""The recipe schema speaks all of swift: generated from swift's own SftArguments, current with the
installed swift, and every argument set in a recipe reaches `swift sft` exactly (read back by swift's
own parser)."""
from __future__ import annotations

import dataclasses
import json

import pytest

from conftest import ROOT, run_cli
from internvl_kit.recipe import Recipe, is_swift_key, load_recipe, schema
from internvl_kit.recipe.schema import SCHEMA_PATH
from internvl_kit.train.swift_cmd import train_command


@pytest.fixture(scope="module")
def swift_args():
    """swift's own command-line parser for `swift sft` (swift.utils.parse_args without building the
    arguments, which would load the model), and the fields it knows."""
    from swift import SftArguments
    from swift.utils.utils import _patch_get_type_hints
    from transformers import HfArgumentParser
    with _patch_get_type_hints():
        parser = HfArgumentParser([SftArguments])
    return parser, {f.name: f for f in dataclasses.fields(SftArguments) if f.init}


def test_the_committed_schema_is_what_the_installed_swift_generates():
    from internvl_kit.recipe.schema_gen import render
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(), \
        "stale: regenerate with python -m internvl_kit.recipe.schema_gen"
    assert SCHEMA_PATH.parent.name == "recipe" and SCHEMA_PATH.parent.parent.name == "internvl_kit"  # in the package


def test_every_swift_sft_argument_is_a_recipe_key(swift_args):
    _, fields = swift_args
    props = schema()["properties"]
    assert sorted(set(fields) - set(props)) == []
    # the rest are `swift rlhf`'s own (tests/train/test_swift_contract.py checks them against RLHFArguments)
    assert sorted(k for k in props if is_swift_key(k) and k not in fields and props[k].get("x-command") != "rlhf") == []
    for key in ("quant_bits", "loss_scale", "optim", "neftune_noise_alpha", "lora_dtype", "resume_only_model",
                "max_pixels", "target_regex", "adapters"):
        assert key in props, key
    assert "cosine_warmup_with_min_lr" in props["lr_scheduler_type"]["enum"]
    assert "raise" not in props["truncation_strategy"]["enum"]


def _sample(prop: dict):
    """A valid value for a property, different from its default where it can be."""
    default = prop.get("default")
    if "enum" in prop:
        choices = [v for v in prop["enum"] if v is not None and v != default]
        return choices[-1] if choices else default
    declared = [prop.get("type")] + [alt.get("type") for alt in prop.get("anyOf", [])]
    kinds = [k for d in declared for k in ([d] if isinstance(d, str) else d or []) if k != "null"]
    kind = kinds[0] if kinds else "string"
    item = (prop.get("items") or {}).get("type", "string")
    if kind == "array" and (prop.get("items") or {}).get("enum"):
        return [prop["items"]["enum"][0]]
    return {"boolean": not default if isinstance(default, bool) else True, "integer": 3, "number": 0.5,
            "string": "x-value", "object": {"k": 1},
            "array": [3, 4] if item == "integer" else [0.25] if item == "number" else ["a", "b"]}[kind]


def test_every_argument_set_in_a_recipe_reaches_swift_sft_exactly(swift_args, tmp_path):
    """One recipe per swift key with a non-default value; swift's own parser reads the argv back."""
    parser, fields = swift_args
    base = load_recipe(ROOT / "recipes/internvl3_5-8b-lora.yaml").data
    props = schema()["properties"]
    skipped = {"model_type", "template", "output_dir", "add_version", "hub_token", "swanlab_token",
               "swanlab_secret", "deepspeed"}       # set by the toolkit, refused as secrets, checked as a file
    no_cli = sorted(k for k in fields if props[k].get("x-swift-cli") is False)
    assert no_cli == ["liger_kernel_config", "parallelism_config"]       # swift's own parser cannot take them
    checked, failures = 0, []
    for key in sorted(fields):
        if key in skipped or key in no_cli:
            continue
        value = _sample(props[key])
        recipe = Recipe(path=ROOT / "recipes/x.yaml", data={**base, key: value})
        cmd = train_command(recipe, recipe.data, tmp_path / "run")
        try:
            namespace, remaining = parser.parse_known_args(cmd.args)
        except SystemExit:
            failures.append(key)
            continue
        assert remaining == [], (key, remaining)
        got = getattr(namespace, key)
        if isinstance(value, dict):
            got = json.loads(got) if isinstance(got, str) else got
        assert got == value or str(got) == str(value), (key, value, got)
        checked += 1
    assert failures == []
    assert checked >= 320


def test_typos_and_values_are_checked_against_swift(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("{}\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"model: OpenGVLab/InternVL3_5-8B\ndataset: [{data}]\nlora_dtpye: bf16\nquant_bits: 5\n"
                      f"optim: adamw_fast\n")
    out = run_cli("train.py", str(recipe), "--dry-run")
    assert out.returncode == 1
    assert f"{recipe}:3: lora_dtpye: unknown key; did you mean 'lora_dtype'?" in out.stderr
    assert f"{recipe}:4: quant_bits: 5 is not allowed" in out.stderr and "allowed: 1, 2, 3, 4, 8, float8" in out.stderr
    assert f"{recipe}:5: optim: 'adamw_fast' is not allowed" in out.stderr
    out = run_cli("train.py", "recipes/tiny-demo.yaml", "quant_bits=4", "loss_scale=last_round",
                  "neftune_noise_alpha=5", "lr_scheduler_type=cosine_warmup_with_min_lr", "--dry-run")
    assert out.returncode == 0, out.stderr[-2000:]
    for flag in ("--quant_bits 4", "--loss_scale last_round", "--neftune_noise_alpha 5",
                 "--lr_scheduler_type cosine_warmup_with_min_lr"):
        assert flag in out.stdout


def test_keys_lists_the_keys_with_their_help():
    out = run_cli("train.py", "--keys", "neftune")
    assert out.returncode == 0 and out.stdout.startswith("neftune_noise_alpha  [")
    assert "NEFTune" in out.stdout
    assert run_cli("train.py", "--keys", "no_such_thing").returncode == 1


def test_a_wheel_install_carries_the_schema_and_dry_runs_from_another_directory(tmp_path):
    """Not editable: the schema must come from the installed package, the recipe from anywhere."""
    import subprocess
    import sys
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    target = tmp_path / "site"
    (wheel,) = wheels.glob("internvl_kit-*.whl")
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import sys, internvl_kit; assert internvl_kit.__file__.startswith(sys.argv[1]), internvl_kit.__file__;"
            "from internvl_kit.train.cli import main; sys.exit(main([sys.argv[2], '--dry-run', 'output_dir=out']))")
    out = subprocess.run([sys.executable, "-c", code, str(target), str(ROOT / "recipes/internvl3_5-8b-latex-ocr.yaml")],
                         cwd=elsewhere, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "PYTHONPATH": str(target)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--model OpenGVLab/InternVL3_5-8B --model_type internvl_chat" in out.stdout
    assert (target / "internvl_kit" / "recipe" / "schema.json").is_file()
    assert (target / "internvl_kit" / "models" / "remote_code" / "modeling_internvl_chat.py").is_file()


def test_arguments_swift_sft_cannot_take_are_refused_with_the_reason(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("{}\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"model: OpenGVLab/InternVL3_5-8B\ndataset: [{data}]\nliger_kernel_config: {{rope: true}}\n")
    out = run_cli("train.py", str(recipe), "--dry-run")
    assert out.returncode == 1 and f"{recipe}:3: liger_kernel_config: swift sft cannot take liger_kernel_config on " \
                                   f"its command line" in out.stderr
