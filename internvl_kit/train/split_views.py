"""`ID@SPLIT`: one split of a hub dataset as a dataset name swift understands.

swift's registry loads every split it lists for a dataset as training data (LaTeX_OCR: train, validation
and test alike), and its `ID:subset#N` syntax has no way to name one split. `AI-ModelScope/LaTeX_OCR@test`
registers a view of the dataset that is the same registration (hub ids, subsets, preprocessor) with one
split, under that name; `hf::`, `:subset` and `#N` work on it as on the dataset itself. train.py's swift
plugin registers the views a command names, and infer.py and the preflight register theirs in-process.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

MARK = "@"
_NAME = re.compile(r"^(?:(?:hf|ms|HF|MS)::)?([^:#]+)")


def view_name(entry: str) -> tuple[str, str, str] | None:
    """(view name, base id, split) when a dataset entry names a split view, else None."""
    m = _NAME.match(entry.strip())
    name = m.group(1).strip() if m else ""
    if MARK not in name or name.startswith(("/", ".", "~")):
        return None
    base, split = name.rsplit(MARK, 1)
    return (name, base, split) if base and split else None


def known_splits(meta) -> list[str]:
    splits = list(meta.split)
    for subset in meta.subsets:
        splits += [s for s in subset.split or [] if s not in splits]
    return splits


def register(entries: Iterable[str]) -> list[str]:
    """Register the views the entries name (idempotent); ValueError names a split the registration lacks."""
    from dataclasses import replace

    from swift.dataset import DATASET_MAPPING, DatasetMeta, register_dataset
    from swift.dataset import dataset_syntax
    done = []
    for entry in entries:
        parsed = view_name(entry)
        if parsed is None or parsed[0] in done:
            continue
        name, base, split = parsed
        key = next((k for k, m in DATASET_MAPPING.items() if isinstance(k, tuple) and base in (m.ms_dataset_id,
                                                                                              m.hf_dataset_id)), None)
        meta = DATASET_MAPPING[key] if key is not None else DatasetMeta(ms_dataset_id=base, hf_dataset_id=base)
        if key is not None and split not in known_splits(meta):
            raise ValueError(f"{entry}: {base} has no split {split!r} in swift's registration; its splits: "
                             f"{', '.join(known_splits(meta))}")
        view = replace(meta, dataset_name=name, split=[split],
                       subsets=[replace(s, split=[split]) for s in meta.subsets])
        register_dataset(view, exist_ok=True)
        # swift maps a plain hub id to the last registration carrying it: the dataset itself must stay last
        if key is not None:
            DATASET_MAPPING[key] = DATASET_MAPPING.pop(key)
        else:
            register_dataset(meta, exist_ok=True)
        dataset_syntax._dataset_meta_mapping = None
        done.append(name)
    return done


def from_argv(argv: list[str]) -> list[str]:
    """The `--dataset` / `--val_dataset` values of a swift command line that name split views."""
    out, taking = [], False
    for arg in argv:
        if arg.startswith("--"):
            taking = arg in ("--dataset", "--val_dataset")
        elif taking and view_name(arg):
            out.append(arg)
    return out
