"""One signal-and-output discipline for the commands that run a child (training, serving).

The rules: SIGINT, SIGTERM and SIGHUP all mean "stop cleanly" (Ctrl-C, a scheduler, a closed terminal or
an ssh drop); the child is stopped before anything is reported; and output that cannot be written (the
reader of a `| tee` left) never changes what happens to the child or the exit status."""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)      # handled like SIGINT (KeyboardInterrupt)


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
