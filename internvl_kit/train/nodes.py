"""Several nodes: which node this is, the command each node runs, and what a failure says about the others.

Every node runs `train.py` with the same recipe and the same --run-dir on a shared filesystem. Node 0 owns
the run directory: it makes the data plan, writes run.json/recipe.yaml/command.sh and stamps checkpoints;
node N > 0 writes only its own log (swift-nodeN.log), so it never contradicts the record. swift's workers
save checkpoints into that directory from every rank (ZeRO shards), which is where --resume looks.
"""
from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

# What a worker prints when a peer on another node went away: gloo's TCP pair, NCCL's watchdog, the store.
_LOST = re.compile(r"Connection closed by peer \[?([^\]\s]+)\]?:?(\d+)?|Connection reset by peer|"
                   r"ProcessGroupNCCL's watchdog|NCCL communicator was aborted|Broken pipe|"
                   r"DistNetworkError|recvValue failed|Socket Timeout|timed out after \d+")
_NO_RENDEZVOUS = re.compile(r"The client socket has timed out after (\d+)m?s while trying to connect to "
                            r"\(([^,]+), (\d+)\)|waiting for clients\. (\d+)/(\d+) clients joined|"
                            r"The server socket has timed out|RendezvousTimeoutError")


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else None


@dataclass(frozen=True)
class Nodes:
    count: int                  # nnodes
    rank: int | None            # this node's rank; None: not told (train.py then prints each node's command)
    addr: str | None            # node 0's address
    port: int | None

    @classmethod
    def of(cls, nnodes: int, rank: int | None, addr: str | None, port: int | None) -> "Nodes":
        """From the command line, falling back to swift's own environment variables."""
        return cls(nnodes, rank if rank is not None else _env_int("NODE_RANK"),
                   addr or os.environ.get("MASTER_ADDR") or None, port or _env_int("MASTER_PORT"))

    @property
    def several(self) -> bool:
        return self.count > 1

    @property
    def lead(self) -> bool:
        """Whether this node owns the run directory (one node, or node 0 of several)."""
        return not self.several or not self.rank

    @property
    def log_name(self) -> str:
        return "swift.log" if self.lead else f"swift-node{self.rank}.log"

    def problem(self, run_dir_given: bool, launching: bool) -> str | None:
        """What is wrong with this node's launch arguments, or None."""
        if self.rank is not None and self.rank >= self.count:
            return f"--node-rank {self.rank} does not exist with nnodes={self.count} (ranks 0..{self.count - 1})"
        if self.several and self.rank and not self.addr:
            return f"--node-rank {self.rank} needs --master-addr (the address of node 0), or MASTER_ADDR in the environment"
        if self.several and self.rank is not None and launching and not run_dir_given:
            return (f"nnodes={self.count}: every node must write into one run directory; pass the same --run-dir DIR "
                    f"(on a filesystem all nodes share) on each node. `python train.py RECIPE` without --node-rank "
                    f"prints each node's command with one")
        return None

    def argv(self, rank: int | str) -> list[str]:
        """The train.py options that make a node `rank` of this run."""
        return ["--node-rank", str(rank), "--master-addr", self.addr or "<rank-0 address>",
                "--master-port", str(self.port or 29500)]


def node_commands(recipe: str, overrides: list[str], run_dir: Path, nodes: Nodes, shell: str) -> list[str]:
    """The lines `train.py` prints for a multi-node recipe: one command per node, then what each runs."""
    head = ["python", "train.py", recipe, *overrides, "--run-dir", str(run_dir)]
    lines = [f"# {nodes.count} nodes: run on each node (same recipe, same data paths, --run-dir on a filesystem "
             f"they share), node 0 first:"]
    for rank in range(nodes.count):
        lines.append(" ".join(shlex.quote(a) if not a.startswith("<") else a for a in [*head, *nodes.argv(rank)]))
    lines.append("# each runs: " + shell.replace("NODE_RANK=0", "NODE_RANK=<rank>"))
    lines.append("# or as one Slurm job: python train.py RECIPE ... --slurm (writes the sbatch script)")
    return lines


def diagnosis(tail: list[str], nodes: Nodes, timeout_s: int) -> str | None:
    """A line naming what went wrong between the nodes, when the tail of a failed node's log shows it."""
    if not nodes.several:
        return None
    others = [r for r in range(nodes.count) if r != (nodes.rank or 0)]
    named = "node 0" if nodes.rank else ("node " + ", ".join(map(str, others)) if len(others) == 1
                                         else "one of nodes " + ", ".join(map(str, others)))
    text = "\n".join(tail)
    found = _NO_RENDEZVOUS.search(text)
    if found:
        where = f"{nodes.addr or '127.0.0.1'}:{nodes.port or 29500}"
        if nodes.rank:
            return (f"[fail]  node {nodes.rank} could not reach node 0 at {where} within the rendezvous timeout "
                    f"({timeout_s} s, rdzv_timeout): is node 0 running, and are --master-addr/--master-port the "
                    f"ones it was given (and open in the firewall)?")
        joined = f" ({found.group(4)} of {found.group(5)} nodes joined)" if found.group(4) else ""
        return (f"[fail]  {named} did not join the rendezvous at {where} within {timeout_s} s{joined} "
                f"(rdzv_timeout): start every node's command with the same --master-addr and --master-port; a node "
                f"that started says why in its own log (swift-nodeN.log)")
    found = _LOST.search(text)
    if found:
        return (f"[fail]  lost {named}: a worker's connection to another node closed mid-run ({found.group(0)}); "
                f"that node stopped or died, and its own output says why")
    return None
