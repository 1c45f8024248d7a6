"""Run a swift command as a child process: its exit code is ours, Ctrl-C (or SIGTERM, SIGHUP) stops it
cleanly before anything is reported, and training progress is read from swift's logging.jsonl while it
runs. A closed stdout (`| tee` gone) changes neither the child's fate nor the exit status."""
from __future__ import annotations

import json
import math
import os
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO, Any, Callable

from .supervise import ABORT_AT_EXIT, aborted_at_exit, log_tail, say, stop_group, stop_signals, supervised, write_bytes
from .swift_cmd import LAUNCH_VARS, SwiftCommand

POLL_S = 0.5
TAIL_LINES = 40
EXIT_NAN = 3        # stopped by the toolkit: the loss stayed NaN/inf
EXIT_INTERRUPTED = 130   # Ctrl-C or SIGTERM: swift was stopped
# How a worker killed by the kernel's OOM killer shows: our child's code, or torchrun's report of a worker.
KILLED_CODES = (137, 247, -9)
KILLED_MARKS = ("exitcode  : -9", "Signals.SIGKILL", "Signal 9 (SIGKILL)")


# The preference signals swift's DPO trainer logs (trl's names) -> how a progress line shows them
PREFERENCE = (("rewards/margins", "margin", "{:.3f}"), ("rewards/accuracies", "reward_acc", "{:.2f}"),
              ("logps/chosen", "logp chosen", "{:.2f}"), ("logps/rejected", "rejected", "{:.2f}"))


def _preference(row: dict[str, Any], prefix: str = "") -> str:
    parts = [f"  {label} {fmt.format(float(row[prefix + key]))}" for key, label, fmt in PREFERENCE
             if isinstance(row.get(prefix + key), (int, float))]
    return "".join(parts)


def format_progress(row: dict[str, Any]) -> str | None:
    """One line per swift log row: training steps (with the reward margin and accuracy of a preference run),
    evaluations and the final summary."""
    step = row.get("global_step/max_steps", "")
    eta = f"  elapsed {row.get('elapsed_time', '?')}  eta {row.get('remaining_time', '?')}"
    if "loss" in row:
        done, _, total = str(step).partition("/")
        pct = f" ({100 * int(done) // max(int(total), 1)}%)" if done.isdigit() and total.isdigit() else ""
        lr = row.get("learning_rate")
        return (f"[train] step {step}{pct}  loss {float(row['loss']):.4f}"
                f"{f'  lr {float(lr):.2e}' if lr is not None else ''}{_preference(row)}{eta}")
    if "eval_loss" in row:
        return f"[eval]  step {step}  eval_loss {float(row['eval_loss']):.4f}{_preference(row, 'eval_')}{eta}"
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


class _LossWatch:
    """Warns on a NaN/inf loss and asks to stop after `limit` consecutive ones (0: never stop). A loss of
    exactly 0 is warned about too: with transformers' logging_nan_inf_filter on (its default; the base
    recipe turns it off) a run of NaN steps is logged as 0."""

    def __init__(self, limit: int, print_fn: Callable[[str], None]):
        self.limit, self.print_fn, self.run, self.warned = limit, print_fn, 0, False

    def see(self, row: dict[str, Any]) -> bool:
        """True when the run should stop."""
        if "loss" not in row:
            return False
        try:
            loss = float(row["loss"])
        except (TypeError, ValueError):
            loss = math.nan
        if math.isfinite(loss) and loss != 0.0:
            self.run = 0
            return False
        self.run += 0 if math.isfinite(loss) else 1
        if not self.warned:
            self.warned = True
            what = "exactly 0 (with logging_nan_inf_filter on, NaN/inf steps are logged as 0)" if loss == 0.0 else loss
            self.print_fn(f"[warn]  loss is {what} at step {row.get('global_step/max_steps', '?')}: lower "
                          f"learning_rate, use bf16 rather than fp16, or check the data"
                          + (f"; stopping after {self.limit} such steps in a row (stop_on_nan)" if self.limit else ""))
        return bool(self.limit) and self.run >= self.limit


def _pump(stream: IO[bytes], log: IO[bytes], echo: bool, tail: deque) -> None:
    """Copy swift's output to swift.log (and stdout with --verbose) until swift closes it; a stdout whose
    reader left stops the echo, never the copy (or swift would block on a full pipe)."""
    for line in iter(stream.readline, b""):
        log.write(line)
        log.flush()
        tail.append(line.decode("utf-8", "replace").rstrip())
        if echo:
            echo = write_bytes(line)


def run(cmd: SwiftCommand, run_dir: Path, *, verbose: bool = False, stop_on_nan: int = 3,
        on_poll: Callable[[], None] | None = None, print_fn: Callable[[str], None] = say,
        log_name: str = "swift.log", explain: Callable[[list[str]], str | None] | None = None) -> int:
    """Start swift, show progress until it exits, and return its exit code (130 after Ctrl-C, EXIT_NAN
    when the loss stayed NaN/inf for `stop_on_nan` logged steps). `explain` turns the tail of a failed
    run's log into a line saying why (a lost node, say)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    # swift reads its launcher and tiling variables from the environment: the child gets exactly the recorded
    # ones (the caller's were folded into the recipe, or refused on --resume), never a stray NPROC_PER_NODE
    env = {**{k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}, **cmd.env, "PYTHONUNBUFFERED": "1"}
    log_path = run_dir / log_name
    follower = LogFollower(run_dir / "logging.jsonl")
    follower.offset = (run_dir / "logging.jsonl").stat().st_size if (run_dir / "logging.jsonl").exists() else 0
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with open(log_path, "ab") as log, supervised(cmd.argv(), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL) as proc:
        pump = threading.Thread(target=_pump, args=(proc.stdout, log, verbose, tail), daemon=True)
        pump.start()
        interrupted = nan_stop = False
        watch = _LossWatch(stop_on_nan, print_fn)
        with stop_signals():
            try:
                while proc.poll() is None:
                    time.sleep(POLL_S)
                    if _report(follower, verbose, print_fn, on_poll, watch):
                        nan_stop = True
                        stop_group(proc)
                        print_fn(f"[stop]  the loss was NaN/inf for {watch.run} logged steps in a row: swift stopped")
                        break
            except KeyboardInterrupt:
                interrupted = True
                stop_group(proc)                      # first the child, then the words
                print_fn(f"[stop]  interrupted: swift stopped (exit {proc.returncode})")
            finally:
                if proc.poll() is None:               # any other way out of the loop: the child goes too
                    stop_group(proc)
                pump.join(timeout=5)
                _report(follower, verbose, print_fn, on_poll, watch)
    code = proc.returncode
    losses = [float(r["loss"]) for r in follower.rows if "loss" in r]
    if losses:
        print_fn(f"[loss]  {losses[0]:.4f} -> {losses[-1]:.4f} over {len(losses)} logged steps")
    if interrupted:
        return EXIT_INTERRUPTED
    if nan_stop:
        return EXIT_NAN
    if code != 0 and aborted_at_exit(code, log_tail(log_path)) and any("train_runtime" in r for r in follower.rows):
        print_fn(f"[note]  swift finished training (its final checkpoint and summary were written), then a process "
                 f"aborted while exiting (exit {code}: \"{ABORT_AT_EXIT}\", a race in Python 3.11's shutdown "
                 f"with threads still in torch code, pytorch#38228); the run is complete")
        return 0
    if code != 0:
        print_fn(f"[fail]  swift exited with code {code}; last lines of {log_path}:")
        for line in tail:
            print_fn(f"        {line}")
        why = explain(list(tail)) if explain is not None else None
        if why:
            print_fn(why)
        if killed(code, tail):
            print_fn("[fail]  a training process was killed (SIGKILL): most likely out of memory (the kernel's OOM "
                     "killer). Lower per_device_train_batch_size, max_length or internvl.max_num, or use more GPUs "
                     "/ DeepSpeed (python train.py RECIPE --estimate)")
    return code


def killed(code: int, tail: "deque[str] | list[str]") -> bool:
    """Whether swift (or one of torchrun's workers) died of SIGKILL, the OOM killer's signal."""
    return code in KILLED_CODES or any(mark in line for line in tail for mark in KILLED_MARKS)


def _report(follower: LogFollower, verbose: bool, print_fn: Callable[[str], None],
            on_poll: Callable[[], None] | None, watch: _LossWatch) -> bool:
    """Print new progress rows; True when the loss watch asks to stop."""
    stop = False
    for row in follower.poll():
        line = format_progress(row)
        if line and not verbose:
            print_fn(line)
        stop = watch.see(row) or stop
    if on_poll:
        on_poll()
    return stop
