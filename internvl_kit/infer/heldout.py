"""The rows to score when they are not a local file: a run's held-out rows, or a hub dataset (ID@SPLIT).

Both come from swift's own loader. A run's held-out rows are rebuilt with the data arguments and seed its
run.json recorded (the data plan's `swift_args`): the same call `swift sft` made, so the same rows in the same
order. They are written once as a messages/images JSONL under the checkpoint's infer/ directory, images as
files, which is what the predictor reads.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .checkpoint import CheckpointInfo


class _Error(Exception):
    pass


def _data_args(info: CheckpointInfo) -> dict[str, Any]:
    """The run's data arguments: the plan's record, else the recorded recipe with its builtin refs resolved."""
    record = info.record or {}
    plan = record.get("data_plan") or {}
    if plan.get("swift_args"):
        return dict(plan["swift_args"])
    from ..models import builtin
    data, _ = builtin.resolve_recipe_refs(dict(info.recipe or {}), materialize=True)
    return data


def rows(info: CheckpointInfo, entry: str | None) -> tuple[Path, str]:
    """(JSONL of the rows, what they are): the run's held-out rows when entry is None, else that hub entry."""
    from ..train import swift_data
    from .cli import _InputError
    args = _data_args(info)
    try:
        if entry is None:
            if not (args.get("val_dataset") or float(swift_data.setting(args, "split_dataset_ratio") or 0) > 0):
                raise _InputError(f"{info.path}: the run held no rows out (split_dataset_ratio 0, no val_dataset); "
                                  f"give --dataset FILE or a hub split such as ID@test")
            print("[data]  rebuilding the run's held-out rows through swift's loader ...", flush=True)
            _, loaded = swift_data.load_like_sft(args)
            how = ("val_dataset " + ", ".join(args["val_dataset"]) if args.get("val_dataset") else
                   f"split_dataset_ratio {swift_data.setting(args, 'split_dataset_ratio')} of "
                   f"{', '.join(args.get('dataset') or [])}, data_seed {swift_data.setting(args, 'data_seed')}")
            name, source = "held-out", f"held out in training ({how})"
        else:
            print(f"[data]  loading {entry} through swift's loader ...", flush=True)
            loaded = swift_data.load_rows(entry, args)
            name, source = re.sub(r"[^\w.@-]+", "_", entry).strip("_"), entry
    except swift_data.DataLoadError as e:
        raise _InputError(str(e)) from None
    if loaded is None or len(loaded) == 0:
        raise _InputError(f"{entry or 'the held-out rows'}: no rows")
    path = swift_data.export_rows(loaded, info.path / "infer" / name)
    print(f"[data]  {len(loaded):,} rows: {source}", flush=True)
    return path, source
