"""Run a swift command as a child process: its exit code is ours, Ctrl-C stops it cleanly,
and training progress is read from swift's logging.jsonl while it runs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any, Callable

from .swift_cmd import SwiftCommand

POLL_S = 0.5
GRACE_S = 20.0      # after Ctrl-C: time swift gets to stop before SIGTERM, then SIGKILL
TAIL_LINES = 40


def format_progress(row: dict[str, Any]) -> str | None:
    """One line per swift log row: training steps, evaluations and the final summary."""
    step = row.get("global_step/max_steps", "")
    eta = f"  elapsed {row.get('elapsed_time', '?')}  eta {row.get('remaining_time', '?')}"
    if "loss" in row:
        done, _, total = str(step).partition("/")
        pct = f" ({100 * int(done) // max(int(total), 1)}%)" if done.isdigit() and total.isdigit() else ""
        lr = row.get("learning_rate")
        return (f"[train] step {step}{pct}  loss {float(row['loss']):.4f}"
                f"{f'  lr {float(lr):.2e}' if lr is not None else ''}{eta}")
    if "eval_loss" in row:
        return f"[eval]  step {step}  eval_loss {float(row['eval_loss']):.4f}{eta}"
    if "train_runtime" in row:
        return f"[done]  {step} steps in {float(row['train_runtime']):.1f}s  train_loss {row.get('train_loss')}"
    return None


class LogFollower:
    """Reads complete new lines of a JSONL file that another process appends to."""

    def __init__(self, path: Path):
        self.path, self.offset, self.rows = path, 0, []

    def poll(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        new = []
        for line in chunk[:end].splitlines():
            try:
                new.append(json.loads(line))
            except ValueError:
                continue
        self.rows += new
        return new


def _pump(stream: IO[bytes], log: IO[bytes], echo: bool, tail: deque) -> None:
    for line in iter(stream.readline, b""):
        log.write(line)
        log.flush()
        tail.append(line.decode("utf-8", "replace").rstrip())
        if echo:
            sys.stdout.buffer.write(line)
            sys.stdout.flush()


def run(cmd: SwiftCommand, run_dir: Path, *, verbose: bool = False,
        on_poll: Callable[[], None] | None = None, print_fn: Callable[[str], None] = print) -> int:
    """Start swift, show progress until it exits, and return its exit code (130 after Ctrl-C)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **cmd.env, "PYTHONUNBUFFERED": "1"}
    log_path = run_dir / "swift.log"
    follower = LogFollower(run_dir / "logging.jsonl")
    follower.offset = (run_dir / "logging.jsonl").stat().st_size if (run_dir / "logging.jsonl").exists() else 0
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with open(log_path, "ab") as log:
        # Own process group: Ctrl-C reaches swift (and torchrun's workers) only through us.
        proc = subprocess.Popen(cmd.argv(), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        pump = threading.Thread(target=_pump, args=(proc.stdout, log, verbose, tail), daemon=True)
        pump.start()
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        interrupted = False
        try:
            while proc.poll() is None:
                time.sleep(POLL_S)
                _report(follower, verbose, print_fn, on_poll)
        except KeyboardInterrupt:
            interrupted = True
            print_fn("[stop]  interrupted: stopping swift ...")
            _stop(proc)
        finally:
            signal.signal(signal.SIGTERM, previous)
            pump.join(timeout=5)
            _report(follower, verbose, print_fn, on_poll)
    code = proc.returncode
    losses = [float(r["loss"]) for r in follower.rows if "loss" in r]
    if losses:
        print_fn(f"[loss]  {losses[0]:.4f} -> {losses[-1]:.4f} over {len(losses)} logged steps")
    if interrupted:
        return 130
    if code != 0:
        print_fn(f"[fail]  swift exited with code {code}; last lines of {log_path}:")
        for line in tail:
            print_fn(f"        {line}")
    return code


def _raise_interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a scheduler stopping the job) is handled like Ctrl-C: swift gets to stop cleanly."""
    raise KeyboardInterrupt


def _report(follower: LogFollower, verbose: bool, print_fn: Callable[[str], None],
            on_poll: Callable[[], None] | None) -> None:
    for row in follower.poll():
        line = format_progress(row)
        if line and not verbose:
            print_fn(line)
    if on_poll:
        on_poll()


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT to swift's group, then SIGTERM, then SIGKILL, each after a grace period."""
    for sig, wait in ((signal.SIGINT, GRACE_S), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
