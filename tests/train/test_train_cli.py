"""train.py without swift running: dry-run speed and content, the argv, the env knobs, preflight."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, VARIANTS, run_cli
from internvl_kit.recipe import load_recipe
from internvl_kit.train.swift_cmd import PLUGIN_PATH, format_value, train_command

DEMO = "recipes/tiny-demo.yaml"


def test_dry_run_prints_the_swift_command_fast_without_heavy_imports(tmp_path):
    code = (
        "import sys, time; t=time.perf_counter();"
        "from internvl_kit.train.cli import main;"
        f"rc = main(['{DEMO}', '--dry-run', 'output_dir={tmp_path}']);"
        "dt = time.perf_counter() - t;"
        "heavy = sorted(m for m in ('torch', 'transformers', 'swift', 'modelscope') if m in sys.modules);"
        "print('RESULT', rc, dt, heavy)"
    )
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    wall = time.perf_counter() - start
    assert out.returncode == 0, out.stderr
    rc, dt, heavy = out.stdout.split("RESULT ")[1].split(" ", 2)
    assert rc == "0" and heavy.strip() == "[]"
    assert float(dt) < 1.0 and wall < 3.0   # whole interpreter start included in `wall`
    cmd = next(line for line in out.stdout.splitlines() if " swift sft " in f" {line}")
    for flag in ("--tuner_type lora", "--model_type internvl_chat", "--template internvl3_5", "--add_version false"):
        assert flag in cmd
    assert cmd.startswith("INPUT_SIZE=56 MAX_NUM=6 swift sft --model ")
    assert not list(Path(tmp_path).iterdir())   # a dry run writes nothing


def test_dry_run_via_script(tmp_path):
    out = run_cli("train.py", DEMO, "--dry-run", f"output_dir={tmp_path}", "lora_rank=16")
    assert out.returncode == 0, out.stderr
    assert "lora_rank: 16" in out.stdout and "--lora_rank 16" in out.stdout


def test_bad_recipe_exits_1_with_every_problem_and_no_traceback(tmp_path):
    out = run_cli("train.py", DEMO, "--dry-run", "lora_rnak=3", "freeze_vit=perhaps")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "lora_rnak: unknown key; did you mean 'lora_rank'?" in out.stderr
    assert "freeze_vit: expected boolean, got 'perhaps' (str)" in out.stderr


def test_missing_dataset_fails_preflight_unless_skipped(tmp_path):
    out = run_cli("train.py", DEMO, "--dry-run", f"dataset=[{tmp_path}/none.jsonl]", f"output_dir={tmp_path}")
    assert out.returncode == 1
    assert f"dataset file '{tmp_path}/none.jsonl' not found" in out.stderr
    assert "preflight failed" in out.stderr
    out = run_cli("train.py", DEMO, "--dry-run", "--skip-preflight", f"dataset=[{tmp_path}/none.jsonl]",
                  f"output_dir={tmp_path}")
    assert out.returncode == 0 and "launching despite preflight errors" in out.stderr


def test_a_tracker_that_is_not_installed_fails_preflight(tmp_path):
    """report_to passes through to swift; one whose package is missing would stop transformers after loading."""
    out = run_cli("train.py", DEMO, "--dry-run", "report_to=[tensorboard,swanlab]", f"output_dir={tmp_path}")
    assert out.returncode == 1 and "--report_to" not in out.stdout
    assert "report_to: error: swanlab: the swanlab package is not installed here (pip install swanlab)" in out.stderr
    assert "tensorboard" not in out.stderr                              # installed (with the toolkit)
    out = run_cli("train.py", DEMO, "--dry-run", "report_to=[tensorboard]", f"output_dir={tmp_path}")
    assert out.returncode == 0 and "--report_to tensorboard" in out.stdout


def test_argv_is_a_list_and_maps_keys_one_to_one(tmp_path):
    r = load_recipe(ROOT / DEMO, ["system=hello; rm -rf /", "target_modules=[q_proj,v_proj]"])
    cmd = train_command(r, {**r.data, "model": "/m", "dataset": ["/d.jsonl"], "val_dataset": ["/v.jsonl"]},
                      tmp_path / "run")
    args = cmd.args
    assert args[:6] == ["--model", "/m", "--model_type", "internvl_chat", "--template", "internvl3_5"]
    assert args[args.index("--system") + 1] == "hello; rm -rf /"        # one argv item, never a shell
    i = args.index("--target_modules")
    assert args[i + 1:i + 3] == ["q_proj", "v_proj"]
    assert args[args.index("--freeze_vit") + 1] == "true"
    assert args[args.index("--output_dir") + 1] == str(tmp_path / "run")
    assert "--internvl" not in args and "--description" not in args and "--extends" not in args
    assert "--external_plugins" not in args                       # the chat templates read the env themselves
    assert cmd.env == {"MAX_NUM": "6", "INPUT_SIZE": "56"}
    assert cmd.argv()[-len(args):] == args


def test_hf_route_gets_the_max_num_plugin(tmp_path):
    r = load_recipe(ROOT / DEMO, ["model=builtin:tiny-internvl-hf", "~internvl.input_size"])
    cmd = train_command(r, r.data, tmp_path / "run")
    assert cmd.args[2:6] == ["--model_type", "internvl", "--template", "internvl_hf"]
    assert cmd.args[cmd.args.index("--external_plugins") + 1] == str(PLUGIN_PATH)
    assert cmd.env == {"MAX_NUM": "6"}


@pytest.mark.parametrize("name", ["internvl2_5", "internvl3_5"])      # chat route: swift cuts the tiles
def test_a_chat_checkpoint_with_other_tiles_than_swift_would_cut_is_refused(tmp_path, name):
    variant = VARIANTS[name]
    config = variant.path / "config.json"                 # built (a dry run does not build builtins)
    out = run_cli("train.py", DEMO, *variant.overrides, "~internvl.input_size", "--dry-run", f"output_dir={tmp_path}")
    assert out.returncode == 1
    assert f"the model's tiles are 56 px (force_image_size in {config}) but swift would " \
           f"cut 448-px tiles; set internvl.input_size=56" in out.stderr


def test_chat_templates_get_knobs_as_env_and_no_plugin(tmp_path):
    r = load_recipe(ROOT / DEMO, ["model_type=internvl_chat", "template=internvl3_5", "internvl.video_segments=4",
                                  "internvl.input_size=448", "model=OpenGVLab/InternVL3_5-8B"])
    cmd = train_command(r, r.data, tmp_path)
    assert cmd.env == {"MAX_NUM": "6", "VIDEO_SEGMENTS": "4", "INPUT_SIZE": "448"}
    assert "--external_plugins" not in cmd.args


def test_format_value():
    assert format_value(True) == ["true"] and format_value(False) == ["false"]
    assert format_value(["a", "b"]) == ["a", "b"]
    assert format_value(1e-4) == ["0.0001"] and format_value(8) == ["8"]
    assert json.loads(format_value({"b": 1, "a": 2})[0]) == {"a": 2, "b": 1}


@pytest.mark.parametrize("env, message", [
    ({"MAX_NUM": "0"}, "MAX_NUM=0 in the environment: must be >= 1"),
    ({"INPUT_SIZE": "50"}, "INPUT_SIZE=50 in the environment: must be a multiple of 28"),
    ({"VIDEO_SEGMENTS": "9999"}, "VIDEO_SEGMENTS=9999 in the environment: must be <= 512"),
    ({"MASTER_PORT": "99999"}, "MASTER_PORT=99999 in the environment must be a TCP port (1-65535)"),
])
def test_environment_knobs_meet_the_schemas_bounds(env, message, tmp_path):
    out = run_cli("train.py", DEMO, "--dry-run", f"output_dir={tmp_path}", env=env)
    assert out.returncode in (1, 2) and message in out.stderr and "Traceback" not in out.stderr


def test_resume_continues_only_a_run_of_the_same_recipe_file(tmp_path):
    """Two recipes can share a name (tiny-demo.yaml in two folders): the name alone must not pick the run."""
    from internvl_kit.train import run_dir as runs
    own, other = ROOT / DEMO, tmp_path / "elsewhere" / "tiny-demo.yaml"
    out = tmp_path / "out"
    for name, recipe_file in (("tiny-demo-20260101-000000", other), ("tiny-demo-20260101-000001", own)):
        (out / name / "checkpoint-1").mkdir(parents=True)
        (out / name / "checkpoint-1" / "trainer_state.json").write_text("{}")
        (out / name / "run.json").write_text(json.dumps({"recipe_name": "tiny-demo",
                                                         "recipe_file": str(recipe_file)}))
    (out / "tiny-demo-20260101-000001").touch()
    assert runs.find_resumable(out, "tiny-demo", DEMO)[0] == (out / "tiny-demo-20260101-000001").resolve()
    (out / "tiny-demo-20260101-000001" / "run.json").unlink()
    found, others = runs.find_resumable(out, "tiny-demo", DEMO)
    assert found is None and others == [(out / "tiny-demo-20260101-000000").resolve()]
    res = run_cli("train.py", DEMO, "--resume", f"output_dir={out}")
    assert res.returncode == 1 and "were started from another recipe file" in res.stderr
    assert str(other) in res.stderr and "--run-dir" in res.stderr


def test_resuming_a_finished_run_is_refused(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoint-40").mkdir(parents=True)
    (run / "checkpoint-40" / "trainer_state.json").write_text(json.dumps({"global_step": 40, "max_steps": 40}))
    r = load_recipe(ROOT / DEMO)
    (run / "run.json").write_text(json.dumps({"recipe_name": "tiny-demo", "recipe_file": str(ROOT / DEMO),
                                              "recipe": r.data, "overrides": []}))
    out = run_cli("train.py", DEMO, "--resume", "--run-dir", str(run))
    assert out.returncode == 1 and "already finished (40/40 steps, checkpoint-40)" in out.stderr


def test_add_version_false_never_writes_over_an_existing_run(tmp_path):
    (tmp_path / "checkpoint-5").mkdir()
    (tmp_path / "run.json").write_text('{"resumed": [{"from": "x"}]}')
    out = run_cli("train.py", DEMO, "add_version=false", f"output_dir={tmp_path}")
    assert out.returncode == 1 and "already holds a run" in out.stderr and "--resume --run-dir" in out.stderr
    assert (tmp_path / "run.json").read_text() == '{"resumed": [{"from": "x"}]}'


@pytest.mark.parametrize("damage", [{"recipe": "lora_rank: 8"}, {"overrides": "lora_rank=8"},
                                    {"recipe_chain": [1, 2]}, {"resumed": {}}])
def test_a_hand_edited_run_record_with_wrong_types_is_named_on_resume(damage, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoint-4").mkdir(parents=True)
    (run / "checkpoint-4" / "trainer_state.json").write_text(json.dumps({"global_step": 4, "max_steps": 40}))
    record = {"recipe_name": "tiny-demo", "recipe_file": str(ROOT / DEMO), "recipe": load_recipe(ROOT / DEMO).data,
              "overrides": [], "recipe_chain": [], "resumed": [], **damage}
    (run / "run.json").write_text(json.dumps(record))
    out = run_cli("train.py", DEMO, "--resume", "--run-dir", str(run))
    (key,) = damage
    assert out.returncode == 1 and f"run.json is damaged: {key} is" in out.stderr and "Traceback" not in out.stderr


def _finished_at(run: Path, step: int, recipe_file: Path, **recipe_over) -> None:
    """A run record of recipe_file (as load_recipe reads it now) with a checkpoint at `step` of 40."""
    (run / f"checkpoint-{step}").mkdir(parents=True)
    (run / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": 40}))
    data = {**load_recipe(recipe_file).data, **recipe_over}
    (run / "run.json").write_text(json.dumps({"recipe_name": recipe_file.stem, "recipe_file": str(recipe_file),
                                              "recipe": data, "overrides": [], "recipe_chain": [], "resumed": []}))


def test_resume_keeps_the_recorded_world_size_unless_told(tmp_path):
    run = tmp_path / "run"
    _finished_at(run, 4, ROOT / DEMO)
    out = run_cli("train.py", DEMO, "--resume", "--run-dir", str(run), "--dry-run", env={"NPROC_PER_NODE": "2"})
    assert out.returncode == 1 and "NPROC_PER_NODE=2 in the environment, but the run was recorded with " \
                                   "nproc_per_node=1" in out.stderr and "--change-world-size" in out.stderr
    told = run_cli("train.py", DEMO, "--resume", "--run-dir", str(run), "--dry-run", "--change-world-size",
                   env={"NPROC_PER_NODE": "2", "MAX_NUM": "5"})
    assert told.returncode == 0, told.stderr
    assert "nproc_per_node 1 -> 2" in told.stderr and "NPROC_PER_NODE=2 swift sft" in told.stdout
    assert "MAX_NUM=5 in the environment is ignored on --resume" in told.stderr and "MAX_NUM=6" in told.stdout


@pytest.mark.parametrize("how", [["nproc_per_node=1e3"], []], ids=["recipe", "environment"])
def test_a_thousand_processes_per_node_is_refused(how, tmp_path):
    out = run_cli("train.py", DEMO, *how, "--dry-run", env={} if how else {"NPROC_PER_NODE": "1000"})
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert ("nproc_per_node: must be >= 1 and <= 64, got 1000.0" in out.stderr or "NPROC_PER_NODE=1000 in the environment: must be <= 64"
            in out.stderr), out.stderr


def test_resume_refuses_a_recipe_file_whose_content_changed(tmp_path):
    """Same file, other content (lora_rank edited): without --run-dir the run is not silently continued."""
    recipe = tmp_path / "tiny-demo.yaml"
    recipe.write_text(f"extends: {ROOT / DEMO}\nlora_rank: 8\n")
    _finished_at(tmp_path / "out" / "tiny-demo-20260101-000000", 4, recipe)
    recipe.write_text(f"extends: {ROOT / DEMO}\nlora_rank: 16\n")
    out = run_cli("train.py", str(recipe), "--resume", f"output_dir={tmp_path / 'out'}", "--dry-run")
    assert out.returncode == 1 and "has changed since" in out.stderr and "lora_rank: 8 -> 16" in out.stderr
    run = tmp_path / "out" / "tiny-demo-20260101-000000"
    as_recorded = run_cli("train.py", str(recipe), "--resume", "--run-dir", str(run), "--dry-run")
    assert as_recorded.returncode == 0 and "now differs (lora_rank: 8 -> 16)" in as_recorded.stderr
    assert "--lora_rank 8" in as_recorded.stdout
