"""Refresh a run's report.html in a child process: the report stage comes after train and infer in the
package layout, and a report that cannot be written must never change a training's or a scoring's result."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TIMEOUT_S = 300


def refresh(run_dir: Path, ended: bool = True) -> tuple[Path | None, str]:
    """(the report written, "") or (None, why not). `ended`: no swift is training this run now."""
    try:
        out = subprocess.run([sys.executable, "-m", "internvl_kit.report", str(run_dir), "--quiet",
                              *(["--ended"] if ended else [])],
                             capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        return None, lines[-1] if lines else f"exit status {out.returncode}"
    return Path(out.stdout.strip().splitlines()[-1]), ""
