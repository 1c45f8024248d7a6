"""swift external plugin for benchmarks/gpu_train.py: at exit, write torch's peak GPU memory of the
training process (max allocated and max reserved, GiB) to $INTERNVL_BENCH_MEMORY."""
import atexit
import json
import os


def _write() -> None:
    import torch
    path = os.environ.get("INTERNVL_BENCH_MEMORY")
    if path and torch.cuda.is_available() and int(os.environ.get("RANK", "0")) == 0:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"max_allocated_gib": torch.cuda.max_memory_allocated() / 2 ** 30,
                       "max_reserved_gib": torch.cuda.max_memory_reserved() / 2 ** 30}, f)


atexit.register(_write)
