"""Scale-out through swift's own launcher, on CPU and on each route: two-process data parallel,
single-process ZeRO-2, the multi-node commands, and the refusal of naive model parallelism."""
from __future__ import annotations

import json
import math
import shlex
import sys

import pytest

from conftest import run_cli
from internvl_kit.train import run_dir as runs

DEMO = "recipes/tiny-demo.yaml"
SHORT = ["max_steps=6", "save_steps=6", "eval_steps=6", "logging_steps=2"]


@pytest.mark.e2e
def test_two_process_data_parallel_writes_one_checkpoint(tmp_path, variant, demo_data):
    out = run_cli("train.py", DEMO, *variant.overrides, "nproc_per_node=2", *SHORT, f"output_dir={tmp_path}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert [c.name for c in runs.checkpoints(run)] == ["checkpoint-6"]
    log = (run / "swift.log").read_text()
    assert "torch.distributed.run --nproc_per_node 2" in log and "world_size: 2" in log
    record = json.loads((run / "run.json").read_text())
    assert record["env"]["NPROC_PER_NODE"] == "2" and int(record["env"]["MASTER_PORT"]) > 0


@pytest.mark.e2e
@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_two_process_deepspeed_trains_with_sharded_states(stage, tmp_path, variant, demo_data):
    """Every recipe from 38B up runs ZeRO-3 over several GPUs: two CPU processes exercise that path
    (accelerate miscounts the world on CPU; the toolkit's plugin corrects it, see swift_plugin.py)."""
    out = run_cli("train.py", DEMO, *variant.overrides, f"deepspeed={stage}", "nproc_per_node=2", *SHORT,
                  f"output_dir={tmp_path}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    log = (run / "swift.log").read_text()
    assert "world_size: 2" in log and "Using deepspeed" in log
    shards = sorted(p.name for p in (run / "checkpoint-6" / "global_step6").iterdir())
    assert "zero_pp_rank_0_mp_rank_00_optim_states.pt" in shards and "zero_pp_rank_1_mp_rank_00_optim_states.pt" in shards
    assert json.loads((run / "args.json").read_text())["deepspeed"]["zero_optimization"]["stage"] == int(stage[-1])
    rows = [json.loads(x) for x in (run / "logging.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses and all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]


@pytest.mark.e2e
def test_a_nan_loss_stops_the_run(tmp_path, demo_data):
    out = run_cli("train.py", DEMO, "learning_rate=1e30", "max_steps=40", "logging_steps=1", "save_steps=100",
                  "eval_steps=100", f"output_dir={tmp_path}")
    assert out.returncode == 3, out.stdout[-2000:] + out.stderr[-2000:]
    assert "[warn]  loss is nan" in out.stdout and "stopping after 3 such steps in a row (stop_on_nan)" in out.stdout
    assert "[stop]  the loss was NaN/inf for" in out.stdout


def test_a_killed_worker_is_named_out_of_memory(tmp_path):
    from internvl_kit.train import launch
    from internvl_kit.train.swift_cmd import SwiftCommand

    class Suicide(SwiftCommand):
        def argv(self) -> list[str]:
            return [sys.executable, "-c", "import os, signal; print('loading'); os.kill(os.getpid(), signal.SIGKILL)"]

    lines: list[str] = []
    code = launch.run(Suicide("sft", []), tmp_path, print_fn=lines.append)
    assert code == -9
    assert any("most likely out of memory (the kernel's OOM killer)" in line for line in lines)
    assert launch.killed(1, ["[rank1]: exitcode  : -9 (pid: 42)"])        # torchrun reporting a killed worker


@pytest.mark.parametrize("finished", [True, False], ids=["after-training", "mid-training"])
def test_an_abort_while_exiting_after_training_is_a_complete_run(finished, tmp_path):
    """Python 3.11 can abort a swift process while it exits (a daemon thread still in torch code, pytorch#38228).
    After the final summary row that is a complete run with a note; before it, still a failure."""
    from internvl_kit.train import launch
    from internvl_kit.train.swift_cmd import SwiftCommand
    rows = [{"loss": 1.0, "global_step/max_steps": "6/6"}] + ([{"train_runtime": 3.0}] if finished else [])

    class FinishesThenAborts(SwiftCommand):
        def argv(self) -> list[str]:
            return [sys.executable, "-c", f"""
import json, os, sys
with open({str(tmp_path / "logging.jsonl")!r}, "w") as f:
    f.writelines(json.dumps(r) + "\\n" for r in {rows!r})
print("[INFO:swift] End time of running main: 2026-12-04 01:00:00", flush=True)
sys.stderr.write("terminate called without an active exception\\n"); sys.stderr.flush()
os.abort()"""]

    lines: list[str] = []
    code = launch.run(FinishesThenAborts("sft", []), tmp_path, print_fn=lines.append)
    if finished:
        assert code == 0 and any(x.startswith("[note]  swift finished training") for x in lines), lines
    else:
        assert code == -6 and any(x.startswith("[fail]  swift exited with code -6") for x in lines), lines
    assert not launch.aborted_at_exit(-6, ["End time of running main", "Traceback (most recent call last):",
                                           "terminate called without an active exception"])


# The end of a two-process ZeRO-2 run's swift.log in CI (paths shortened): training done and saved, rank 0
# aborted while exiting, torchrun sent rank 1 SIGTERM and reported both.
TORCHRUN_ABORT = """[INFO:swift] last_model_checkpoint: /tmp/run/checkpoint-6
[INFO:swift] End time of running main: 2026-12-04 02:13:48.491197
terminate called without an active exception
W1204 02:13:48.735000 7264 torch/distributed/elastic/multiprocessing/api.py:1028] Sending process 7289 closing signal SIGTERM
E1204 02:13:48.850000 7264 torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: -6) local_rank: 0 (pid: 7288) of binary: python3.11
Traceback (most recent call last):
  File "torch/distributed/launcher/api.py", line 386, in launch_agent
    raise ChildFailedError(
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
swift/cli/sft.py FAILED
------------------------------------------------------------
Failures:
[1]:
  rank      : 1 (local_rank: 1)
  exitcode  : -15 (pid: 7289)  (SIGTERM)
  traceback : Signal 15 (SIGTERM) received by PID 7289
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  rank      : 0 (local_rank: 0)
  exitcode  : -6 (pid: 7288)  (SIGABRT)
  traceback : Signal 6 (SIGABRT) received by PID 7288
============================================================"""


def test_torchruns_report_of_that_abort_is_recognised_and_nothing_worse_is(tmp_path):
    from internvl_kit.train import launch
    from internvl_kit.train.supervise import log_tail
    lines = TORCHRUN_ABORT.splitlines()
    assert launch.aborted_at_exit(1, lines)
    assert not launch.aborted_at_exit(1, [x.replace("-15 (pid", "1 (pid") for x in lines])   # a rank that failed
    assert not launch.aborted_at_exit(1, lines[:3] + ["Traceback (most recent call last):", "ValueError: x"] + lines[3:])
    log = tmp_path / "swift.log"
    log.write_text("x" * 100 + "\n" + TORCHRUN_ABORT + "\n")
    assert log_tail(log) == ["x" * 100] + lines and log_tail(log, limit=len(TORCHRUN_ABORT) + 5) == lines


def test_swifts_own_launch_variables_win_with_a_note(tmp_path):
    env = {"NPROC_PER_NODE": "2", "CUDA_VISIBLE_DEVICES": "0,1", "MAX_NUM": "2"}
    out = run_cli("train.py", DEMO, "--dry-run", f"output_dir={tmp_path}", env=env)
    assert out.returncode == 0, out.stderr
    assert "note: NPROC_PER_NODE=2 from the environment wins over nproc_per_node: 1" in out.stderr
    assert "note: MAX_NUM=2 from the environment wins over internvl.max_num: 6" in out.stderr
    cmd = next(line for line in out.stdout.splitlines() if " swift sft " in f" {line}")
    assert "MAX_NUM=2" in cmd and "NPROC_PER_NODE=2" in cmd and "MAX_NUM=6" not in cmd


def test_per_node_commands_are_quoted_for_copying(tmp_path):
    out = run_cli("train.py", DEMO, "nnodes=2", "system=a; touch x", f"output_dir={tmp_path}",
                  "--master-addr", "10.1.2.3")
    assert out.returncode == 0, out.stderr
    assert "'system=a; touch x'" in out.stdout
    line = next(x for x in out.stdout.splitlines() if x.startswith("python train.py") and "--node-rank 1" in x)
    assert "system=a; touch x" in shlex.split(line)          # one argument when pasted into a shell


def test_multi_node_prints_each_nodes_command(tmp_path):
    out = run_cli("train.py", DEMO, "nnodes=2", "nproc_per_node=4", f"output_dir={tmp_path}",
                  "--master-addr", "10.1.2.3")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    (node1,) = [x for x in lines if x.startswith("python train.py") and "--node-rank 1 " in x]
    assert node1.startswith(f"python train.py {DEMO} nnodes=2 nproc_per_node=4 output_dir={tmp_path} --run-dir "
                            f"{tmp_path}/tiny-demo-")
    assert node1.endswith(" --node-rank 1 --master-addr 10.1.2.3 --master-port 29500")
    node0 = next(x for x in lines if "--node-rank 0 " in x)        # every node names the same run directory
    assert node0.split("--node-rank")[0] == node1.split("--node-rank")[0]
    each = next(x for x in lines if x.startswith("# each runs:"))
    for var in ("NNODES=2", "NODE_RANK=<rank>", "MASTER_ADDR=10.1.2.3", "MASTER_PORT=29500", "NPROC_PER_NODE=4"):
        assert var in each
    assert not list(tmp_path.iterdir())                      # nothing launched on this machine
    out = run_cli("train.py", DEMO, "nnodes=2", "--node-rank", "1", "--master-addr", "10.1.2.3", "--dry-run",
                  f"output_dir={tmp_path}")
    assert out.returncode == 0 and "NODE_RANK=1" in out.stdout


def test_a_node_without_the_shared_run_directory_is_refused(tmp_path):
    out = run_cli("train.py", DEMO, "nnodes=2", "--node-rank", "1", "--master-addr", "10.1.2.3",
                  f"output_dir={tmp_path}")
    assert out.returncode == 2 and "every node must write into one run directory; pass the same --run-dir" in out.stderr
    assert not list(tmp_path.iterdir())
    out = run_cli("train.py", DEMO, "nnodes=2", "--slurm", "--resume", f"output_dir={tmp_path}")
    assert out.returncode == 2 and "--slurm writes the job for every node" in out.stderr


def test_several_visible_gpus_without_parallel_setting_are_refused(tmp_path):
    env = {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}
    out = run_cli("train.py", DEMO, "--dry-run", f"output_dir={tmp_path}", env=env)
    assert out.returncode == 1
    assert "4 GPUs are visible but nproc_per_node is 1" in out.stderr and "naive model parallelism" in out.stderr
    assert run_cli("train.py", DEMO, "--dry-run", f"output_dir={tmp_path}", "nproc_per_node=4",
                   env=env).returncode == 0
    assert run_cli("train.py", DEMO, "--dry-run", f"output_dir={tmp_path}", "--model-parallel",
                   env=env).returncode == 0


def test_estimate_command(tmp_path):
    out = run_cli("train.py", "recipes/internvl3_5-38b-lora.yaml", "--estimate", "--gpus", "1")
    assert out.returncode == 1 and "fits in 74.5 GiB per GPU" in out.stdout and "NO" in out.stdout
    assert "to fit: 2 GPUs with deepspeed=zero3" in out.stdout
    out = run_cli("train.py", "recipes/internvl3_5-38b-lora.yaml", "--estimate")
    assert out.returncode == 0 and "2 GPU(s), zero3" in out.stdout
