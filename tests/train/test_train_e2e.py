"""train.py really trains the tiny models of both routes with swift: checkpoints, records, falling loss,
resume; and the headline recipe runs with the tiny chat model in place of its hub id."""
from __future__ import annotations

import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, VARIANTS, run_cli
from internvl_kit.train import run_dir as runs

pytestmark = pytest.mark.e2e
DEMO = "recipes/tiny-demo.yaml"


def _losses(run: Path) -> list[float]:
    rows = [json.loads(x) for x in (run / "logging.jsonl").read_text().splitlines() if x.strip()]
    return [float(r["loss"]) for r in rows if "loss" in r]


def test_train_writes_adapter_record_and_the_loss_falls(tmp_path, variant, demo_data):
    out = run_cli("train.py", DEMO, *variant.overrides, f"output_dir={tmp_path}", "num_train_epochs=3",
                  "save_steps=18", "eval_steps=18", "logging_steps=2")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert run.name.startswith("tiny-demo-")
    assert "[train] step 2/36" in out.stdout and "[loss]" in out.stdout

    ckpt = runs.last_checkpoint(run)
    assert ckpt is not None and ckpt.name == "checkpoint-36"
    for name in ("adapter_model.safetensors", "adapter_config.json", "args.json", "run.json", "recipe.yaml"):
        assert (ckpt / name).is_file(), name
    adapter = json.loads((ckpt / "adapter_config.json").read_text())
    assert adapter["r"] == 8 and adapter["lora_alpha"] == 32

    record = json.loads((run / "run.json").read_text())
    knobs = {"max_num": 6} if variant.is_hf else {"max_num": 6, "input_size": 56}
    assert record["recipe_name"] == "tiny-demo" and record["model_type"] == variant.model_type
    assert record["template"] == variant.template and record["internvl"] == knobs
    assert record["env"] == {"MAX_NUM": "6", **({} if variant.is_hf else {"INPUT_SIZE": "56"})}
    assert record["versions"]["ms-swift"].startswith("4.6.")
    for dist in ("transformers", "peft", "torch"):
        assert record["versions"][dist]
    assert record["overrides"][len(variant.overrides)] == f"output_dir={tmp_path}"
    resolved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert resolved == record["recipe"] and resolved["num_train_epochs"] == 3
    assert (run / "command.sh").read_text().splitlines()[1] == record["command"]
    swift_args = json.loads((run / "args.json").read_text())
    assert swift_args["model_type"] == variant.model_type and swift_args["template"] == variant.template
    assert swift_args["output_dir"] == str(run)

    losses = _losses(run)
    assert len(losses) >= 18 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < 0.6 * sum(losses[:3]) / 3


def test_interrupted_run_resumes_exactly_as_recorded(tmp_path, variant, demo_data):
    """A run with overrides is interrupted; the printed resume command (which repeats no override) must
    finish it as the uninterrupted run would (its own total steps, r=16), leaving the record as written
    and appending the resume to its history."""
    overrides = [*variant.overrides, f"output_dir={tmp_path}", "lora_rank=16", "num_train_epochs=12",
                 "save_steps=10", "save_total_limit=3", "eval_steps=1000", "logging_steps=1"]
    proc = subprocess.Popen([sys.executable, "train.py", DEMO, *overrides], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    first = None
    while time.time() < deadline and proc.poll() is None:
        runs_found = [p for p in tmp_path.iterdir() if p.is_dir()]
        if runs_found and runs.last_checkpoint(runs_found[0]):
            first = runs.last_checkpoint(runs_found[0])
            break
        time.sleep(0.05)
    assert first is not None, "no checkpoint appeared"
    proc.send_signal(signal.SIGINT)            # Ctrl-C
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]
    run = first.parent
    stopped_at = int(runs.last_checkpoint(run).name.split("-")[1])
    total = int(next(json.loads(x)["global_step/max_steps"].split("/")[1]
                     for x in (run / "logging.jsonl").read_text().splitlines() if "global_step/max_steps" in x))
    assert total == 12 * 48 // 4 and stopped_at < total, "the run finished before it could be interrupted"
    assert subprocess.run(["pgrep", "-f", str(run)], capture_output=True).stdout == b""   # swift is gone
    before = {name: (run / name).read_bytes() for name in ("recipe.yaml", "command.sh")}
    original = json.loads((run / "run.json").read_text())

    printed = next(line for line in out.splitlines() if "resume with: " in line).split("resume with: ")[1]
    assert "lora_rank" not in printed                         # the run's record carries the overrides
    res = subprocess.run(shlex.split(printed.replace("python ", f"{sys.executable} ", 1)), cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    last = runs.last_checkpoint(run)
    assert last.name == f"checkpoint-{total}"
    assert json.loads((last / "trainer_state.json").read_text())["global_step"] == total
    assert json.loads((last / "adapter_config.json").read_text())["r"] == 16
    steps = [s for s in (json.loads(x).get("global_step/max_steps")
                         for x in (run / "logging.jsonl").read_text().splitlines()) if s]
    assert f"{stopped_at + 1}/{total}" in steps and steps[-1] == f"{total}/{total}"   # continued, same total
    record = json.loads((run / "run.json").read_text())
    assert {k: v for k, v in record.items() if k != "resumed"} == {k: v for k, v in original.items() if k != "resumed"}
    assert record["recipe"]["lora_rank"] == 16 and "lora_rank=16" in record["overrides"]
    (resumed,) = record["resumed"]
    assert resumed["from"].endswith(f"checkpoint-{stopped_at}") and "--resume_from_checkpoint" in resumed["command"]
    assert {name: (run / name).read_bytes() for name in before} == before       # never rewritten
    assert os.access(run / "command.sh", os.X_OK)
    assert f"{Path(sys.executable).parent / 'swift'} sft " in (run / "command.sh").read_text()  # this venv's swift


def test_headline_recipe_trains_with_the_tiny_chat_model_in_place_of_its_hub_id(tmp_path, demo_data):
    """recipes/internvl3_5-8b-latex-ocr.yaml, unchanged in model_type, template and tiling, with the tiny
    InternVL3.5 (same route: InternVLChatModel through trust_remote_code) substituted for the 8B hub id."""
    from internvl_kit.recipe import load_recipe
    recipe = "recipes/internvl3_5-8b-latex-ocr.yaml"
    official = load_recipe(ROOT / recipe).data
    tiny = VARIANTS["internvl3_5"].path
    cpu = ["torch_dtype=float32", "fp16=false", "bf16=false", "check_model=false", "dataloader_num_workers=0",
           "report_to=[none]", "gradient_accumulation_steps=1", "max_steps=2", "save_steps=2", "eval_steps=2"]
    out = run_cli("train.py", recipe, f"model={tiny}", "internvl.input_size=56", f"dataset=[{demo_data['train']}]",
                  "split_dataset_ratio=0.1", f"output_dir={tmp_path}", *cpu)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    record = json.loads((run / "run.json").read_text())
    assert (record["model_type"], record["template"]) == (official["model_type"], official["template"])
    assert record["env"]["MAX_NUM"] == str(official["internvl"]["max_num"]) == "12"
    swift_args = json.loads((run / "args.json").read_text())
    assert swift_args["model_type"] == "internvl_chat" and swift_args["template"] == "internvl3_5"
    assert swift_args["lora_rank"] == official["lora_rank"] and swift_args["max_length"] == official["max_length"]
    assert (run / "checkpoint-2" / "adapter_model.safetensors").is_file()
    assert "InternVLChatModel" in (run / "swift.log").read_text()
