"""A Slurm batch script from a recipe: one `train.py` task per node, the same command as `--node-rank`.

The batch step (on the job's first node) takes node 0's address from the job's node list and decides once
whether this is a resubmission (the run directory has a complete checkpoint: then every node resumes). Each
srun task supplies its own rank from SLURM_NODEID; --kill-on-bad-exit ends the other nodes when one fails.
"""
from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class JobOptions:
    partition: str | None = None
    time: str | None = None
    account: str | None = None
    extra: list[str] = field(default_factory=list)      # further #SBATCH options, as the user wrote them


def script(recipe: str, overrides: list[str], run_dir: Path, nnodes: int, gpus_per_node: int,
           name: str, options: JobOptions, port: int | None = None) -> str:
    """The sbatch script's text; `recipe` is resolved against the current directory, as train.py would."""
    repo = Path(__file__).resolve().parents[2]
    node = [sys.executable, str(repo / "train.py"), str(Path(recipe).resolve()), *overrides,
            "--run-dir", str(run_dir)]
    per_node = (shlex.join(node) + ' ${RESUME:+--resume} --node-rank "$SLURM_NODEID" --master-addr "$MASTER_ADDR"'
                ' --master-port "$MASTER_PORT"')
    sbatch = [f"--job-name={name}", f"--nodes={nnodes}",
              "--ntasks-per-node=1            # one train.py per node: torchrun starts its GPU processes",
              f"--gpus-per-node={gpus_per_node}", f"--output={run_dir}/slurm-%j.out"]
    sbatch += [f"--{key}={value}" for key, value in (("partition", options.partition), ("time", options.time),
                                                     ("account", options.account)) if value]
    sbatch += [o if o.startswith("-") else f"--{o}" for o in options.extra]
    port_line = (f"export MASTER_PORT=${{MASTER_PORT:-{port}}}" if port else
                 "export MASTER_PORT=${MASTER_PORT:-$((20000 + SLURM_JOB_ID % 20000))}   # one port per job")
    lines = [
        "#!/bin/bash",
        f"# {name}: {nnodes} nodes x {gpus_per_node} GPUs. Written by `train.py {recipe} --slurm` on "
        f"{time.strftime('%Y-%m-%d %H:%M')}.",
        f"# Submit: sbatch {shlex.quote(str(run_dir / 'job.sbatch'))}   (submitting it again resumes the run from its "
        f"last checkpoint)",
        *(f"#SBATCH {line}" for line in sbatch),
        "set -euo pipefail",
        f"cd {shlex.quote(str(repo))}",
        f"RUN_DIR={shlex.quote(str(run_dir))}",
        'mkdir -p "$RUN_DIR"',
        'export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"   # node 0',
        port_line,
        "# decided once, here, for every node: a complete checkpoint means this is a resubmission",
        'RESUME=""',
        'if compgen -G "$RUN_DIR/checkpoint-*/trainer_state.json" > /dev/null; then RESUME=1; fi',
        "export RESUME",
        f"srun --kill-on-bad-exit=1 --nodes={nnodes} --ntasks-per-node=1 bash -c {shlex.quote('exec ' + per_node)}",
    ]
    return "\n".join(lines) + "\n"
