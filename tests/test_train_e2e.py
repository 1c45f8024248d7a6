"""train.py really trains the tiny model with swift: checkpoints, records, falling loss, resume."""
from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_cli
from internvl_kit import run_dir as runs

pytestmark = pytest.mark.e2e
DEMO = "recipes/tiny-demo.yaml"


def _losses(run: Path) -> list[float]:
    rows = [json.loads(x) for x in (run / "logging.jsonl").read_text().splitlines() if x.strip()]
    return [float(r["loss"]) for r in rows if "loss" in r]


def test_train_writes_adapter_record_and_the_loss_falls(tmp_path, tiny_model, demo_data):
    out = run_cli("train.py", DEMO, f"output_dir={tmp_path}", "num_train_epochs=3", "save_steps=18",
                  "eval_steps=18", "logging_steps=2")
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
    assert record["recipe_name"] == "tiny-demo" and record["model_type"] == "internvl"
    assert record["template"] == "internvl_hf" and record["internvl"] == {"max_num": 6}
    assert record["env"] == {"MAX_NUM": "6"}
    assert record["versions"]["ms-swift"].startswith("4.6.")
    for dist in ("transformers", "peft", "torch"):
        assert record["versions"][dist]
    assert record["overrides"][0] == f"output_dir={tmp_path}"
    resolved = yaml.safe_load((run / "recipe.yaml").read_text())
    assert resolved == record["recipe"] and resolved["num_train_epochs"] == 3
    assert (run / "command.sh").read_text().splitlines()[1] == record["command"]
    swift_args = json.loads((run / "args.json").read_text())
    assert swift_args["model_type"] == "internvl" and swift_args["template"] == "internvl_hf"
    assert swift_args["output_dir"] == str(run)

    losses = _losses(run)
    assert len(losses) >= 18 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < 0.6 * sum(losses[:3]) / 3


def test_interrupted_run_resumes_to_the_total_steps(tmp_path, tiny_model, demo_data):
    total = 150
    args = [sys.executable, "train.py", DEMO, f"output_dir={tmp_path}", f"max_steps={total}",
            "save_steps=10", "save_total_limit=3", "eval_steps=1000", "logging_steps=1"]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
    assert "resume with: python train.py" in out
    run = first.parent
    stopped_at = int(runs.last_checkpoint(run).name.split("-")[1])
    assert stopped_at < total, "the run finished before it could be interrupted"
    assert subprocess.run(["pgrep", "-f", str(run)], capture_output=True).stdout == b""   # swift is gone

    res = run_cli("train.py", DEMO, f"output_dir={tmp_path}", f"max_steps={total}", "save_steps=10",
                  "save_total_limit=3", "eval_steps=1000", "logging_steps=1", "--resume")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    last = runs.last_checkpoint(run)
    assert last.name == f"checkpoint-{total}"
    state = json.loads((last / "trainer_state.json").read_text())
    assert state["global_step"] == total
    record = json.loads((run / "run.json").read_text())
    assert len(record["resumed"]) == 1 and record["resumed"][0]["from"].endswith(f"checkpoint-{stopped_at}")
    assert "--resume_from_checkpoint" in record["swift_args"]
    steps = [json.loads(x).get("global_step/max_steps") for x in (run / "logging.jsonl").read_text().splitlines()]
    resumed_steps = [s for s in steps if s]
    # the resumed part continues after the checkpoint instead of starting again at step 1
    assert f"{stopped_at + 1}/{total}" in resumed_steps and resumed_steps[-1] == f"{total}/{total}"
