"""Run a command beside N CPU-bound processes (`python tests/load.py 2 -- make test`): the suite must hold on
a busy machine, as CI machines and users' machines are. The burners are stopped however the command ends."""
from __future__ import annotations

import subprocess
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit():
        print("usage: python tests/load.py N -- COMMAND ...", file=sys.stderr)
        return 2
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(int(argv[0]))]
    try:
        return subprocess.call(argv[2:])
    finally:
        for b in burners:
            b.kill()
            b.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
