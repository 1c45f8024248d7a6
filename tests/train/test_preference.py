"""Preference tuning through train.py on each route: a recipe with rlhf_type runs `swift rlhf`, DPO and
InternVL's MPO mix train on a generated set with an objective preference (the right description of the
picture over a refusal), and the preference signals swift logs are shown and rise."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

pytestmark = pytest.mark.e2e

DEMO = "recipes/tiny-demo.yaml"
REFUSAL = "I cannot tell what is in this picture."
MPO = ("loss_type=[sigmoid,bco_pair,sft]", "loss_weights=[0.8,0.2,1.0]")     # recipes/base/mpo.yaml's mix


def _pairs(src: Path, dest: Path) -> Path:
    """The demo rows with the refusal as each row's rejected answer (swift's rejected_response form)."""
    with open(src) as f, open(dest, "w") as out:
        for line in f:
            out.write(json.dumps({**json.loads(line), "rejected_response": REFUSAL}) + "\n")
    return dest


@pytest.mark.parametrize("kind", ["dpo", "mpo"])
def test_dpo_and_mpo_train_through_train_py_and_the_reward_accuracy_rises(kind, variant, demo_data, tmp_path):
    train, val = (_pairs(demo_data[s], tmp_path / f"{s}.jsonl") for s in ("train", "val"))
    out = run_cli("train.py", DEMO, *variant.overrides, "rlhf_type=dpo", *(MPO if kind == "mpo" else ()),
                  f"dataset=[{train}]", f"val_dataset=[{val}]", "max_steps=24", "save_steps=24", "eval_steps=12",
                  "logging_steps=4", f"output_dir={tmp_path / 'out'}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert " swift rlhf " in out.stdout and "--rlhf_type dpo" in out.stdout
    (run,) = (tmp_path / "out").iterdir()
    rows = [json.loads(x) for x in (run / "logging.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "rewards/accuracies" in r]
    evals = [r for r in rows if "eval_rewards/accuracies" in r]
    first, last = steps[0], evals[-1]
    print(f"{variant.name} {kind}: reward accuracy {first['rewards/accuracies']:.2f} -> "
          f"{last['eval_rewards/accuracies']:.2f} (eval), margin {first['rewards/margins']:.3f} -> "
          f"{last['eval_rewards/margins']:.3f}")
    # the policy starts as the reference (margin 0) and ends preferring the described picture on held-out rows
    assert abs(first["rewards/margins"]) < 1e-3 and first["rewards/accuracies"] == 0
    assert last["eval_rewards/accuracies"] >= 0.99 and last["eval_rewards/margins"] > 1.0
    assert any(line.startswith("[eval]") and "reward_acc 1.00" in line for line in out.stdout.splitlines())
    args = json.loads((run / "args.json").read_text())
    # what swift ran with: the mix, or DPO's own sigmoid loss (swift's default, filled in as the run starts)
    assert args["rlhf_type"] == "dpo" and args["loss_type"] == (["sigmoid", "bco_pair", "sft"] if kind == "mpo"
                                                                else "sigmoid")


def test_an_sft_run_chains_into_mpo_that_resumes_against_the_same_reference(overfit_run, tmp_path):
    """SFT -> MPO with one key (from_sft: the SFT run, whose last checkpoint becomes adapters and ref_adapters, as
    swift documents), stopped
    by Ctrl-C and resumed by the printed command: the resume keeps the SFT checkpoint as its reference, and the
    record links the two runs."""
    import shlex
    import signal
    import subprocess
    import sys
    import time
    from conftest import ROOT
    from internvl_kit.train import run_dir as runs
    sft = overfit_run["checkpoint"]
    pairs = _pairs(overfit_run["data"], tmp_path / "pairs.jsonl")
    proc = subprocess.Popen([sys.executable, "train.py", DEMO, *overfit_run["variant"].overrides, "rlhf_type=dpo", *MPO,
                             f"from_sft={overfit_run['run']}", f"dataset=[{pairs}]", "~val_dataset",
                             "internvl.max_num=2", "max_length=256", "max_steps=200", "save_steps=5",
                             "save_total_limit=2", "logging_steps=5", "eval_steps=1000",
                             f"output_dir={tmp_path / 'out'}"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = None
    while proc.poll() is None and first is None:          # the event: the first checkpoint, then Ctrl-C
        found = [p for p in (tmp_path / "out").glob("*") if p.is_dir()]
        first = runs.last_checkpoint(found[0]) if found else None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]
    run = first.parent
    printed = next(line for line in out.splitlines() if "resume with: " in line).split("resume with: ")[1]
    res = subprocess.run(shlex.split(printed.replace("python ", f"{sys.executable} ", 1)), cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert runs.last_checkpoint(run).name == "checkpoint-200"

    record = json.loads((run / "run.json").read_text())
    assert record["swift_command"] == "rlhf"
    for key in ("adapters", "ref_adapters"):
        (link,) = record["chained_from"][key]
        assert link == {"checkpoint": str(sft.resolve()), "run_dir": str(overfit_run["run"].resolve()),
                        "recipe_name": "tiny-demo"}
    (resumed,) = record["resumed"]
    argv = shlex.split(resumed["command"].split("swift rlhf ", 1)[1])
    assert argv[argv.index("--ref_adapters") + 1] == str(sft.resolve()) and "--resume_from_checkpoint" in argv
    assert argv[argv.index("--adapters") + 1] == str(sft.resolve())
    rows = [json.loads(x) for x in (run / "logging.jsonl").read_text().splitlines()]
    margins = [r["rewards/margins"] for r in rows if "rewards/margins" in r]
    assert abs(margins[0]) < 1e-3 and margins[-1] > 1.0      # starts as its SFT reference, ends preferring

    # the rest of the journey on the preference run: infer, merge with its proofs, card, push
    from hub_server import StandInHub
    mpo = runs.last_checkpoint(run)
    red = overfit_run["root"] / "red.png"
    inf = run_cli("infer.py", str(mpo), "--image", str(red), "--prompt", "Colour?", "--max-new-tokens", "4")
    assert inf.returncode == 0 and inf.stdout.strip().splitlines()[-1] == "red", inf.stdout[-2000:] + inf.stderr[-2000:]
    scored = tmp_path / "scored.jsonl"     # --compare-base on a chained run: the base, its SFT start, the MPO run
    cmp = run_cli("infer.py", str(mpo), "--dataset", str(pairs), "--compare-base", "-o", str(scored),
                  "--max-new-tokens", "4")
    assert cmp.returncode == 0, cmp.stdout[-2000:] + cmp.stderr[-2000:]
    metrics = json.loads(scored.with_suffix(".metrics.json").read_text())["metrics"]
    assert list(metrics) == ["base", "sft", "tuned"] and metrics["tuned"]["exact_match"] == 1.0
    assert all("prediction_sft" in json.loads(x) for x in scored.read_text().splitlines())
    merged = tmp_path / "merged"
    with StandInHub({"tok": "alice"}) as hub:
        env = {"MODELSCOPE_ENDPOINT": hub.endpoint, "MODELSCOPE_API_TOKEN": "tok", "MODELSCOPE_API_MAX_RETRIES": "1"}
        out = run_cli("export.py", str(mpo), "--merge", "-o", str(merged), "--push", "alice/tiny-mpo", env=env)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        assert "the policy, not the reference)" in out.stdout and f"vs its reference {sft.name}" in out.stdout
        card = (merged / "README.md").read_text()
        assert card == hub.state.repos["alice/tiny-mpo"].files["README.md"].decode()
    assert ("| objective | MPO (Mixed Preference Optimization) through swift rlhf (rlhf_type dpo): loss 0.8 x sigmoid + "
            "0.2 x bco_pair + 1.0 x sft, beta 0.1 (swift default); reference: the adapter checkpoint-60 of run "
            "tiny-demo |") in card
    assert str(tmp_path) not in card

    # and it serves: swift deploy with the preference run's adapter answers as infer.py does
    import socket
    import urllib.request
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "infer.py", str(mpo), "--serve", "--port", str(port)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in server.stdout:                      # the event: the server says it is ready
            if line.startswith("[serve] ready"):
                break
        assert line.startswith("[serve] ready"), line
        model = line.split("models: ")[1].rstrip(")\n")
        body = {"model": model, "temperature": 0, "max_tokens": 4, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": str(red)}}, {"type": "text", "text": "Colour?"}]}]}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            assert json.loads(resp.read())["choices"][0]["message"]["content"] == "red"
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=60)
    assert server.returncode == 130
