"""Stopping a run: the child is stopped before anything is reported, SIGINT, SIGTERM and SIGHUP alike, and
a reader that left (`train.py | tee log`, then Ctrl-C) changes neither the child's fate nor the exit code."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import ROOT

# Stands in for swift: logs a training step every 0.1 s until told to stop.
CHILD = textwrap.dedent("""
    import json, os, signal, sys, time
    run = sys.argv[1]
    open(os.path.join(run, "child.pid"), "w").write(str(os.getpid()))
    signal.signal(signal.SIGINT, lambda *a: sys.exit(0))
    for i in range(100000):
        with open(os.path.join(run, "logging.jsonl"), "a") as f:
            f.write(json.dumps({"loss": 1.0, "global_step/max_steps": f"{i + 1}/100000"}) + "\\n")
        time.sleep(0.1)
""")

HARNESS = textwrap.dedent("""
    import sys
    from pathlib import Path
    from internvl_kit.train import launch
    from internvl_kit.train.swift_cmd import SwiftCommand

    class Stand(SwiftCommand):
        def argv(self):
            return [sys.executable, "-c", CHILD, sys.argv[1]]

    CHILD = sys.argv[2]
    sys.exit(launch.run(Stand("sft", []), Path(sys.argv[1]), verbose=sys.argv[3] == "1"))
""")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(path: Path, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)


def _outcome(proc: subprocess.Popen, child: int) -> tuple[int | None, bool]:
    """The launcher's exit code (None: it hung) and whether the child outlived it; then neither is left
    running, whatever the outcome."""
    try:
        code = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        code = None
    orphan = _alive(child)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    if orphan:
        os.kill(child, signal.SIGKILL)
    return code, orphan


@pytest.mark.parametrize("verbose", [False, True], ids=["progress", "verbose"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["INT", "TERM", "HUP"])
def test_stop_through_a_closed_pipe_stops_the_child_and_exits_130(tmp_path, sig, verbose):
    # its own session, as a terminal's foreground job: the signal goes to the whole group, as Ctrl-C does
    proc = subprocess.Popen([sys.executable, "-c", HARNESS, str(tmp_path), CHILD, "1" if verbose else "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    _wait_for(tmp_path / "child.pid")
    if not verbose:                                  # a progress line went through: the pipe works
        assert proc.stdout.readline().startswith(b"[train]")
    proc.stdout.close()                              # the reader leaves (tee killed by the same Ctrl-C)
    child = int((tmp_path / "child.pid").read_text())
    os.killpg(proc.pid, sig)
    code, orphan = _outcome(proc, child)
    err = proc.stderr.read().decode()
    assert code == 130, f"exit {code}, stderr:\n{err}"
    assert "Traceback" not in err, err
    assert not orphan, "the stand-in for swift outlived the launcher"


def test_a_second_ctrl_c_while_stopping_does_not_abandon_the_child(tmp_path):
    """The child takes its time to stop; Ctrl-C pressed again meanwhile must not leave it running."""
    slow = CHILD.replace("lambda *a: sys.exit(0)",
                         "lambda *a: (open(os.path.join(run, 'stopping'), 'w').close(), time.sleep(1.5), sys.exit(0))")
    proc = subprocess.Popen([sys.executable, "-c", HARNESS, str(tmp_path), slow, "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    _wait_for(tmp_path / "child.pid")
    assert proc.stdout.readline().startswith(b"[train]")
    child = int((tmp_path / "child.pid").read_text())
    os.killpg(proc.pid, signal.SIGINT)
    _wait_for(tmp_path / "stopping")                 # the launcher is inside its stop: the child got SIGINT
    os.killpg(proc.pid, signal.SIGINT)
    code, orphan = _outcome(proc, child)
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    assert code == 130, f"exit {code}\n{out}\n{err}"
    assert "[stop]  interrupted: swift stopped" in out
    assert not orphan


def _gone(pids: list[int], timeout: float = 120) -> list[int]:
    """The pids still alive when they all ended or the timeout passed (an event wait, not a sleep)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_a_toolkit_killed_by_sigkill_leaves_no_child_or_grandchild(tmp_path):
    """SIGKILL gives Python no chance to clean up: the watchdog stops swift's whole group, including the
    grandchild that `swift deploy` / torchrun start (which a PR_SET_PDEATHSIG on the child would miss)."""
    forking = CHILD.replace('signal.signal(signal.SIGINT, lambda *a: sys.exit(0))',
                            'import subprocess; g = subprocess.Popen([sys.executable, "-c", "import time; '
                            'time.sleep(3600)"]); open(os.path.join(run, "grandchild.pid"), "w").write(str(g.pid)); '
                            'signal.signal(signal.SIGINT, signal.SIG_IGN)')   # deaf to Ctrl-C, as a hung swift
    proc = subprocess.Popen([sys.executable, "-c", HARNESS, str(tmp_path), forking, "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    _wait_for(tmp_path / "grandchild.pid")
    pids = [int((tmp_path / n).read_text()) for n in ("child.pid", "grandchild.pid")]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    left = _gone(pids)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], "the stand-in for swift (or its child) outlived a SIGKILLed launcher"


def test_swift_gets_only_the_recorded_launcher_variables(tmp_path):
    """A stray NPROC_PER_NODE (or MAX_NUM) in the caller's environment must not reach swift: the toolkit
    folded it into the recipe, or refused it on --resume; the child gets what the command says."""
    echo = ('import json, os, sys; json.dump({k: os.environ.get(k) for k in ("NPROC_PER_NODE", "MAX_NUM", "KEEP")}, '
            'open(os.path.join(sys.argv[1], "env.json"), "w"))')
    harness = HARNESS.replace('Stand("sft", [])', 'Stand("sft", [], {"MAX_NUM": "2"})')
    out = subprocess.run([sys.executable, "-c", harness, str(tmp_path), echo, "0"], cwd=ROOT, capture_output=True,
                         timeout=120, env={**os.environ, "NPROC_PER_NODE": "2", "MAX_NUM": "9", "KEEP": "yes"})
    assert out.returncode == 0, out.stderr
    import json
    assert json.loads((tmp_path / "env.json").read_text()) == {"NPROC_PER_NODE": None, "MAX_NUM": "2", "KEEP": "yes"}
