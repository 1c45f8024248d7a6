"""One signal-and-output discipline for the commands that run a child (training, serving).

The rules: SIGINT, SIGTERM and SIGHUP all mean "stop cleanly" (Ctrl-C, a scheduler, a closed terminal or
an ssh drop); the child is stopped before anything is reported; and output that cannot be written (the
reader of a `| tee` left) never changes what happens to the child or the exit status."""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)      # handled like SIGINT (KeyboardInterrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def _handling(sigs: tuple[signal.Signals, ...], handler: Any) -> Iterator[None]:
    """Inside the block, `sigs` go to `handler`; outside the main thread (no signals there) a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in sigs}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def stop_signals() -> AbstractContextManager[None]:
    """Inside the block, SIGTERM and SIGHUP raise KeyboardInterrupt as Ctrl-C does."""
    return _handling(STOP_SIGNALS, _interrupt)


def deferred_signals() -> AbstractContextManager[None]:
    """Inside the block (stopping a child), further stop signals are ignored: a second Ctrl-C must not
    abandon a half-stopped child."""
    return _handling((signal.SIGINT, *STOP_SIGNALS), signal.SIG_IGN)


def silence(stream: IO[Any]) -> None:
    """Point a stream whose reader left at /dev/null, so later writes and the flush at exit succeed."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


_silenced: set[int] = set()          # streams whose reader left (by id): what is written there is lost


def _guarded(stream: IO[Any], write: Callable[[], object]) -> bool:
    """Run `write` on `stream`; False, and the stream silenced for good, once its reader has left."""
    if id(stream) in _silenced:
        return False
    try:
        write()
        return True
    except (BrokenPipeError, ValueError):       # ValueError: the stream was closed
        _silenced.add(id(stream))
        silence(stream)
        return False


def say(*parts: object, file: IO[str] | None = None) -> bool:
    """print, flushed; a closed pipe drops this and all later output instead of raising. False when the
    text reached nobody (the caller may repeat what matters on stderr)."""
    stream = file or sys.stdout
    return _guarded(stream, lambda: print(*parts, file=stream, flush=True))


def write_bytes(data: bytes) -> bool:
    """Write raw bytes to stdout; False (and stdout silenced) once its reader has left."""
    return _guarded(sys.stdout, lambda: (sys.stdout.buffer.write(data), sys.stdout.flush()))
