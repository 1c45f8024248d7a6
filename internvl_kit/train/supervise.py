"""One signal-and-output discipline for the commands that run a child (training, serving).

The rules: SIGINT, SIGTERM and SIGHUP all mean "stop cleanly" (Ctrl-C, a scheduler, a closed terminal or
an ssh drop); the child is stopped before anything is reported; and output that cannot be written (the
reader of a `| tee` left) never changes what happens to the child or the exit status. And no child outlives
the toolkit: each runs in its own process group, watched by a tiny watchdog that stops the group once the
toolkit is gone, even when it was killed by SIGKILL (swift's own children, which a PR_SET_PDEATHSIG on our
child would miss, are in that group)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)      # handled like SIGINT (KeyboardInterrupt)


# Reads the group id, then blocks until its stdin (a pipe only the toolkit holds open) ends: the toolkit
# closed it, or died. Then the group gets SIGTERM, and SIGKILL if anything of it is left after the grace.
WATCHDOG = """
import os, signal, sys, time
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
line = sys.stdin.buffer.readline()
if not line.strip():
    sys.exit(0)
pgid = int(line)
sys.stdin.buffer.read()
for sig, grace in ((signal.SIGTERM, float(sys.argv[1])), (signal.SIGKILL, 5.0)):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        sys.exit(0)
    end = time.monotonic() + grace
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            sys.exit(0)
        time.sleep(0.1)
"""
WATCHDOG_GRACE_S = 10.0
GRACE_S = 20.0      # after Ctrl-C: time a child gets to stop before SIGTERM, then SIGKILL


@contextmanager
def supervised(argv: list[str], grace: float = GRACE_S, **popen: Any) -> Iterator[subprocess.Popen]:
    """Start argv in its own process group (Ctrl-C reaches it only through us) under a watchdog. Leaving the
    block by any way stops the group (stop_group); the watchdog covers the ways Python never sees (SIGKILL)."""
    read, write = os.pipe()
    try:
        dog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(WATCHDOG_GRACE_S)], stdin=read,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    finally:
        os.close(read)
    try:
        proc = subprocess.Popen(argv, start_new_session=True, **popen)
        os.write(write, f"{proc.pid}\n".encode())
        try:
            yield proc
        finally:
            if proc.poll() is None:
                stop_group(proc, grace)
    finally:
        os.close(write)                    # the watchdog sweeps what is left of the group, then exits
        try:
            dog.wait(timeout=WATCHDOG_GRACE_S + 10)
        except subprocess.TimeoutExpired:
            pass


def stop_group(proc: subprocess.Popen, grace: float = GRACE_S) -> None:
    """SIGINT to the child's process group, then SIGTERM, then SIGKILL, each after a grace period; a second
    Ctrl-C meanwhile is ignored rather than leaving a half-stopped child."""
    with deferred_signals():
        for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def stop_signals() -> Iterator[None]:
    """Inside the block, SIGTERM and SIGHUP raise KeyboardInterrupt as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Inside the block (stopping a child), further stop signals are ignored: a second Ctrl-C must not
    abandon a half-stopped child."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, *STOP_SIGNALS)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def silence(stream: IO[Any]) -> None:
    """Point a stream whose reader left at /dev/null, so later writes and the flush at exit succeed."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


_silenced: set[int] = set()


# Python 3.11 ends a daemon thread that is inside C++ code (the GIL released, as in torch ops) at interpreter
# exit with pthread_exit, whose forced unwind through a noexcept destructor aborts the whole process
# (pytorch#38228). swift's inference engine generates on such threads, so a swift process can die of SIGABRT
# while exiting, after its work is done, written and its end time printed. Under torchrun the other ranks then
# get SIGTERM, and torchrun reports both in a ChildFailedError.
ABORT_AT_EXIT = "terminate called without an active exception"
END_OF_MAIN = "End time of running main"
_TORCHRUN_EXIT = re.compile(r"exitcode\s*:\s*(-?\d+)")


def aborted_at_exit(code: int | None, lines: "list[str] | Any") -> bool:
    """Whether a non-zero exit is only that abort: swift printed its end time, then a process aborted while
    exiting, with no traceback between but torchrun's report, which names nothing worse than that SIGABRT and
    the SIGTERM it sent the other ranks. The caller still checks the work itself was saved."""
    if not code:
        return False
    lines = list(lines)
    ends = [i for i, line in enumerate(lines) if END_OF_MAIN in line]
    after = lines[ends[-1]:] if ends else []
    tracebacks = sum("Traceback (most recent call last)" in line for line in after)
    torchrun = sum(line.rstrip().endswith("ChildFailedError:") for line in after)
    codes = {int(m.group(1)) for line in after for m in _TORCHRUN_EXIT.finditer(line)}
    return (any(ABORT_AT_EXIT in line for line in after) and tracebacks <= torchrun
            and codes <= {-6, -15})


def log_tail(path: "os.PathLike[str] | str", limit: int = 1 << 16) -> list[str]:
    """The last lines of a log file (its last `limit` bytes), for reading how a child ended."""
    try:
        with open(path, "rb") as f:
            start = max(0, os.path.getsize(path) - limit)
            f.seek(start)
            lines = f.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return lines[1:] if start else lines          # from mid-file, the first line is a piece


def say(*parts: object, file: IO[str] | None = None) -> bool:
    """print, flushed; a closed pipe drops this and all later output instead of raising. False when the
    text reached nobody (the caller may repeat what matters on stderr)."""
    stream = file or sys.stdout
    if id(stream) in _silenced:
        return False
    try:
        print(*parts, file=stream, flush=True)
        return True
    except (BrokenPipeError, ValueError):       # ValueError: the stream was closed
        _silenced.add(id(stream))
        silence(stream)
        return False


def write_bytes(data: bytes) -> bool:
    """Write raw bytes to stdout; False (and stdout silenced) once its reader has left."""
    if id(sys.stdout) in _silenced:
        return False
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return True
    except (BrokenPipeError, ValueError):
        _silenced.add(id(sys.stdout))
        silence(sys.stdout)
        return False
