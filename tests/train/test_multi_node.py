"""Two nodes on one machine, for real: two `train.py --node-rank` processes (one worker each) rendezvous on
loopback through torchrun, train like one node with two processes, share one run directory and resume
together; Ctrl-C, a killed node and a broken rendezvous end every node with a named error. A Slurm job
script from the recipe runs the same training through stand-ins for srun/scontrol (tests/train/fake_slurm).

The chat route only: each run is two swift processes on two cores, and the -HF route shares all of this
launch path (torchrun, the run directory, the record)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from internvl_kit.train import run_dir as runs
from internvl_kit.train.swift_cmd import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("multi-node")]   # one worker: the runs are shared

DEMO = "recipes/tiny-demo.yaml"
SHORT = ["max_steps=6", "save_steps=3", "eval_steps=6", "logging_steps=1"]
LONG = ["max_steps=400", "save_steps=2", "eval_steps=1000", "logging_steps=1", "ddp_timeout=120"]
FAKE_SLURM = Path(__file__).with_name("fake_slurm")
WAIT_S = 900                     # a hang fails the test; the bounds themselves are the toolkit's timeouts
_RUNS: dict = {}


def _launch(run_dir: Path, *args: str, ranks=(0, 1), port: int | None = None,
            ports: dict[int, int] | None = None) -> list[tuple[subprocess.Popen, Path]]:
    """Start node `rank` of a two-node run for each rank, each writing its output to run_dir/../nodeR.out."""
    port = port or free_port()
    out = []
    for rank in ranks:
        log = run_dir.parent / f"{run_dir.name}-node{rank}.out"
        argv = [sys.executable, "train.py", *args, "--run-dir", str(run_dir), "--node-rank", str(rank),
                "--master-addr", "127.0.0.1", "--master-port", str((ports or {}).get(rank, port))]
        out.append((subprocess.Popen(argv, cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT), log))
    return out


def _finish(nodes: list[tuple[subprocess.Popen, Path]]) -> list[tuple[int, str]]:
    return [(p.wait(timeout=WAIT_S), log.read_text()) for p, log in nodes]


def _losses(run_dir: Path) -> list[tuple[str, float]]:
    rows = [json.loads(x) for x in (run_dir / "logging.jsonl").read_text().splitlines()]
    return [(r["global_step/max_steps"], r["loss"]) for r in rows if "loss" in r]


def _run(kind: str, tmp_path_factory) -> dict:
    """Each run once per worker: two nodes, or the single-node two-process reference, plain or ZeRO-3."""
    if kind not in _RUNS:
        where, stage = kind.split("-")
        extra = [f"deepspeed={stage}"] if stage != "plain" else []
        run_dir = tmp_path_factory.mktemp(kind) / "run"
        if kind == "nodes-plain":          # through the Slurm job script: the same two train.py --node-rank
            script = _slurm_job(run_dir, "rdzv_timeout=300", *SHORT)
            out = _sbatch(script)
            results = [(out.returncode, out.stdout + out.stderr)]
        elif where == "nodes":
            results = _finish(_launch(run_dir, DEMO, "nnodes=2", "rdzv_timeout=300", *extra, *SHORT))
        else:
            out = run_cli("train.py", DEMO, "nproc_per_node=2", *extra, *SHORT, "--run-dir", str(run_dir))
            results = [(out.returncode, out.stdout + out.stderr)]
        for code, text in results:
            assert code == 0, text[-4000:]
        _RUNS[kind] = {"dir": run_dir, "outputs": [t for _, t in results], "script": run_dir / "job.sbatch"}
    return _RUNS[kind]


def _left(port: int, patience_s: float = 60) -> str:
    """Command lines of processes still naming this run's rendezvous port (train.py's or torchrun's flag),
    once none is left or after `patience_s` (a killed node's watchdog is still stopping its group)."""
    end = time.monotonic() + patience_s
    while True:
        found = subprocess.run(["pgrep", "-af", "--", f"master.port.{port}( |$)"], capture_output=True, text=True)
        assert found.returncode in (0, 1), found.stderr
        left = "\n".join(x for x in found.stdout.splitlines() if "pgrep" not in x)
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.5)


def _wait_for(log: Path, text: str, proc: subprocess.Popen) -> None:
    while text not in log.read_text():
        assert proc.poll() is None, log.read_text()[-4000:]
        time.sleep(0.2)


@pytest.mark.parametrize("stage", ["plain", "zero3"])
def test_two_nodes_train_like_one_node_with_two_processes(stage, tmp_path_factory, demo_data):
    """Plain: the two nodes started by the Slurm job script; ZeRO-3: two train.py --node-rank started here."""
    nodes, single = _run(f"nodes-{stage}", tmp_path_factory), _run(f"single-{stage}", tmp_path_factory)
    run = nodes["dir"]
    log = (run / "swift.log").read_text()
    assert "--nnodes 2 --node_rank 0" in log and "world_size: 2, local_world_size: 1" in log
    assert "--nnodes 2 --node_rank 1" in (run / "swift-node1.log").read_text()
    got, want = _losses(run), _losses(single["dir"])
    assert [s for s, _ in got] == [s for s, _ in want] == [f"{i}/6" for i in range(1, 7)]
    assert all(abs(a - b) <= 1e-4 * max(1.0, abs(b)) for (_, a), (_, b) in zip(got, want)), (got, want)
    # one run directory, one record: node 1 added only its own log to what a single node writes (and the
    # plain run came through the Slurm job, whose script lives there)
    job = ["job.sbatch"] if stage == "plain" else []
    assert sorted(p.name for p in run.iterdir()) == sorted([*(p.name for p in single["dir"].iterdir()),
                                                            "swift-node1.log", *job])
    record = json.loads((run / "run.json").read_text())
    assert record["env"]["NNODES"] == "2" and record["env"]["NODE_RANK"] == "0" and record["resumed"] == []
    assert record["env"]["PET_RDZV_CONF"] == "timeout=300" and "--ddp_timeout 3600" in record["command"]
    assert [c.name for c in runs.checkpoints(run)] == ["checkpoint-3", "checkpoint-6"]
    if stage == "zero3":       # each rank saved its own shards into the checkpoint --resume reads
        shards = {p.name for p in (run / "checkpoint-3" / "global_step3").iterdir()}
        assert {f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in (0, 1)} <= shards
    for text in nodes["outputs"]:
        assert f"[ok]    last checkpoint: {run / 'checkpoint-6'}" in text


def test_both_nodes_resume_from_the_shared_checkpoint_exactly(tmp_path, tmp_path_factory, demo_data):
    """A ZeRO-3 two-node run that stopped after checkpoint-3 continues on both nodes to the same losses."""
    done = _run("nodes-zero3", tmp_path_factory)["dir"]
    run = tmp_path / "run"
    shutil.copytree(done, run, symlinks=True)
    for gone in ("checkpoint-6", "last-checkpoint"):          # as if the nodes had died after step 3's save
        shutil.rmtree(run / gone) if (run / gone).is_dir() and not (run / gone).is_symlink() else (run / gone).unlink()
    kept = [x for x in (run / "logging.jsonl").read_text().splitlines()
            if json.loads(x).get("global_step/max_steps") in ("1/6", "2/6", "3/6")]
    (run / "logging.jsonl").write_text("".join(x + "\n" for x in kept))
    results = _finish(_launch(run, DEMO, "--resume"))
    for code, text in results:
        assert code == 0, text[-4000:]
    assert _losses(run)[3:] == _losses(done)[3:6]
    record = json.loads((run / "run.json").read_text())
    assert len(record["resumed"]) == 1 and record["resumed"][0]["from"] == str(run / "checkpoint-3")


def test_ctrl_c_on_node_0_stops_both_nodes(tmp_path, demo_data):
    port = free_port()
    nodes = _launch(tmp_path / "run", DEMO, "nnodes=2", "rdzv_timeout=300", *LONG, port=port)
    _wait_for(nodes[0][1], "[train] step 3/", nodes[0][0])
    nodes[0][0].send_signal(signal.SIGINT)
    (code0, out0), (code1, out1) = _finish(nodes)
    assert code0 == 130 and "[stop]  interrupted: swift stopped" in out0, out0[-3000:]
    assert code1 != 0 and "[fail]  lost node 0:" in out1, out1[-3000:]
    assert "[stop]  resume with: python train.py" in out1 and "--node-rank 1" in out1
    assert _left(port) == ""


def test_a_killed_node_1_fails_node_0_with_its_name(tmp_path, demo_data):
    port = free_port()
    nodes = _launch(tmp_path / "run", DEMO, "nnodes=2", "rdzv_timeout=300", *LONG, port=port)
    _wait_for(nodes[0][1], "[train] step 3/", nodes[0][0])
    nodes[1][0].send_signal(signal.SIGKILL)      # the node is gone: its watchdog takes torchrun and the worker
    (code0, out0), (code1, _) = _finish(nodes)
    assert code1 == -signal.SIGKILL
    assert code0 != 0 and "[fail]  lost node 1: a worker's connection to another node closed" in out0, out0[-3000:]
    assert _left(port) == ""


def test_a_broken_rendezvous_fails_within_the_rendezvous_timeout(tmp_path, demo_data):
    """Node 0 alone (its node 1 never starts), and a node 1 given the wrong port, at the same time."""
    alone = _launch(tmp_path / "alone", DEMO, "nnodes=2", "rdzv_timeout=10", *SHORT, ranks=(0,))
    lost = _launch(tmp_path / "lost", DEMO, "nnodes=2", "rdzv_timeout=10", *SHORT, ranks=(1,), port=free_port())
    ((code0, out0),), ((code1, out1),) = _finish(alone), _finish(lost)
    assert code0 != 0 and "[fail]  node 1 did not join the rendezvous at 127.0.0.1:" in out0, out0[-3000:]
    assert "within 10 s (1 of 2 nodes joined) (rdzv_timeout)" in out0
    assert code1 != 0 and "[fail]  node 1 could not reach node 0 at 127.0.0.1:" in out1, out1[-3000:]
    assert "within the rendezvous timeout (10 s, rdzv_timeout)" in out1
    assert not (tmp_path / "lost").exists() or [p.name for p in (tmp_path / "lost").iterdir()] == ["swift-node1.log"]


def _slurm_job(run: Path, *overrides: str) -> Path:
    out = run_cli("train.py", DEMO, "nnodes=2", *overrides, "--slurm", "--run-dir", str(run),
                  "--partition", "gpu", "--time", "1:00:00", "--sbatch=--exclusive")
    assert out.returncode == 0, out.stderr[-3000:]
    script = run / "job.sbatch"
    assert out.stdout.splitlines()[-1] == f"sbatch {script}" and os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    return script


def _sbatch(script: Path, **env: str) -> subprocess.CompletedProcess:
    """Run the batch script as Slurm would on the job's first node, with srun/scontrol stand-ins on PATH."""
    full = {**os.environ, "PATH": f"{FAKE_SLURM}{os.pathsep}{os.environ['PATH']}", "SLURM_JOB_ID": "4242",
            "SLURM_JOB_NODELIST": "node[1-2]", "SLURM_JOB_NUM_NODES": "2", "SLURM_NODEID": "0",
            "MASTER_PORT": str(free_port()), **env}
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=WAIT_S, env=full,
                          cwd=script.parent)


def test_the_slurm_script_runs_the_training_on_two_nodes(tmp_path_factory, demo_data):
    """The plain two-node run above is this job: here what is Slurm's (the script, its resubmission)."""
    job = _run("nodes-plain", tmp_path_factory)
    script, run = job["script"], job["dir"]
    text = script.read_text()
    for line in ("#SBATCH --nodes=2", "#SBATCH --gpus-per-node=1", "#SBATCH --partition=gpu",
                 "#SBATCH --time=1:00:00", "#SBATCH --exclusive", f"#SBATCH --output={run}/slurm-%j.out"):
        assert line in text
    assert f"--run-dir {run}" in text and '--node-rank "$SLURM_NODEID"' in text
    # submitted again (a requeue), the job resumes: here it has nothing left to train, and says so
    again = _sbatch(script)
    assert again.returncode != 0 and "already finished (6/6 steps, checkpoint-6)" in again.stderr


def test_a_slurm_job_whose_second_node_never_starts_fails_with_the_rendezvous_error(tmp_path, demo_data):
    script = _slurm_job(tmp_path / "job", "rdzv_timeout=10", *SHORT)
    out = _sbatch(script, FAKE_SRUN_SKIP="1")
    assert out.returncode != 0
    assert "[fail]  node 1 did not join the rendezvous" in out.stdout, out.stdout[-3000:] + out.stderr[-2000:]


def test_the_241b_recipe_writes_a_two_node_job_of_eight_gpus_each():
    out = run_cli("train.py", "recipes/internvl3_5-241b-a28b-lora.yaml", "--slurm", "--dry-run")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "#SBATCH --nodes=2\n" in out.stdout and "#SBATCH --gpus-per-node=8\n" in out.stdout
    assert subprocess.run(["bash", "-n"], input=out.stdout, text=True).returncode == 0
    assert 'srun --kill-on-bad-exit=1 --nodes=2' in out.stdout and '--node-rank "$SLURM_NODEID"' in out.stdout
