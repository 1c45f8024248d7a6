"""The data plan: what swift will train and evaluate on, counted from swift's own loading of the data.

For every `dataset` / `val_dataset` entry (hub or local): the subsets and splits swift loads and their rows,
the distinct rows, the `#N` sampling and its repeat factor, the rows `split_dataset_ratio` holds out (swift
splits first, then samples), the rows swift drops as longer than max_length and the token lengths. The rows
themselves go through data_tools' row checks (as local JSONL does), the images measured from their bytes.
Printed before launch, saved in run.json; infer.py rebuilds the held-out rows from its `swift_args`.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from . import swift_data
from .preflight import Finding

MIN_HELD_OUT = 50                       # below this, eval loss and scores move with a handful of rows
OWN_EVAL_SPLITS = ("validation", "valid", "val", "dev", "test", "eval")
DATA_ARGS = ("dataset", "val_dataset", "split_dataset_ratio", "dataset_shuffle", "val_dataset_shuffle",
             *swift_data._KWARGS, "use_hf")
MAX_ROW_FINDINGS = 20


@dataclass
class EntryPlan:
    key: str                          # dataset | val_dataset
    entry: str
    source: str
    parts: list[dict[str, Any]]       # {"subset", "split", "rows"}
    rows: int
    unique: int
    sample: int | None
    training: int = 0                 # rows of this entry in swift's training set (after sampling)
    training_unique: int = 0
    held_out: int = 0                 # rows of this entry in swift's evaluation set

    @property
    def repeat(self) -> float:
        return self.training / self.training_unique if self.training_unique else 0.0


@dataclass
class Plan:
    entries: list[EntryPlan]
    swift_args: dict[str, Any]         # the data arguments the plan was made with (infer.py reloads with them)
    training: int = 0
    training_unique: int = 0
    held_out: int = 0
    held_out_from: str = ""            # "split_dataset_ratio" | "val_dataset" | ""
    overlap: int = 0                   # held-out rows whose image bytes and answer also occur in training
    too_long_training: int = 0
    too_long_held_out: int = 0
    tokens: dict[str, int] = field(default_factory=dict)     # percentiles over the training rows
    histogram: dict[str, list[int]] = field(default_factory=dict)   # training rows per token-length bin (edges, counts)
    token_note: str = ""
    effective_epochs: float | None = None
    image_tag: str | None = None       # how training rows lead into the text: "<image>\n" or "<image>" (glued)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for e, src in zip(d["entries"], self.entries):
            e["repeat"] = round(src.repeat, 3)
        return d


def _row_key(row: dict[str, Any]) -> str:
    """Content identity of a row: its images' bytes and its answer (the last assistant turn)."""
    h = hashlib.blake2b(digest_size=16)
    for ref, im in zip(swift_data.image_refs(row), row.get("images") or []):
        data = swift_data.image_bytes(ref, im)
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    answers = [m.get("content") or "" for m in row.get("messages") or [] if m.get("role") == "assistant"]
    h.update((answers[-1] if answers else "").encode())
    return h.hexdigest()


def image_tag(row: dict[str, Any]) -> str | None:
    """`<image>\n` or `<image>` as the row's first user turn writes it before its text (None: no image tag).
    swift puts a newline after the image itself, so the two are different prompts: inference must write the
    one training saw."""
    for m in row.get("messages") or []:
        if m.get("role") == "user" and isinstance(m.get("content"), str) and "<image>" in m["content"]:
            rest = m["content"].split("<image>")[-1]
            return "<image>\n" if rest.startswith("\n") else "<image>"
    return None


class _Rows:
    """Each distinct row checked once by data_tools: its token total (None when it has an error)."""

    def __init__(self, data: dict[str, Any], knobs: dict[str, int]):
        from data_tools import context
        from data_tools.validate import ERRORS, Validator
        self.error_codes = ERRORS
        self.setup = context.make(model=data.get("model"), template=data.get("template"),
                                  max_length=data.get("max_length"), max_num=knobs.get("max_num"),
                                  input_size=knobs.get("input_size"), video_segments=knobs.get("video_segments"),
                                  video_max_num=knobs.get("video_max_num"))
        self.validator = Validator(self.setup.options)
        self.totals: dict[str, int | None] = {}
        self.findings: list[Finding] = []
        self.errors = 0

    def see(self, row: dict[str, Any], where: str, report: bool) -> str:
        key = _row_key(row)
        if key in self.totals:
            return key
        codes: list[tuple[str, str]] = []
        emit = lambda code, message: codes.append((code, message))  # noqa: E731
        msgs = {"messages": row["messages"], **{k: row[k] for k in ("videos", "objects") if row.get(k)}}
        sample = self.validator.check_loaded(msgs, swift_data.image_refs(row), emit)
        total = self.validator.check_length(sample, lambda *_: None) if sample is not None else None
        self.totals[key] = total
        for code, message in codes:
            if code == "missing-tags":          # swift's preprocessors put the image first: their convention
                continue
            error = code in self.error_codes
            self.errors += error
            if report and len(self.findings) < MAX_ROW_FINDINGS:
                self.findings.append(Finding("error" if error else "warning", where, f"{code}: {message}"))
        return key


def _percentiles(counts: Counter, totals: dict[str, int | None]) -> dict[str, int]:
    lengths = sorted((totals[k], n) for k, n in counts.items() if totals.get(k) is not None)
    total = sum(n for _, n in lengths)
    if not total:
        return {}
    out, seen, marks = {}, 0, [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)]
    for length, n in lengths:
        seen += n
        while marks and seen >= marks[0][1] * total:
            out[marks.pop(0)[0]] = length
    out["max"] = lengths[-1][0]
    return out


def _histogram(counts: Counter, totals: dict[str, int | None], bins: int = 24) -> dict[str, list[int]]:
    """Training rows per token-length bin: `edges` has one more entry than `counts` (bin i is
    edges[i] <= length < edges[i+1]); integer bins of equal width from the shortest row to the longest."""
    lengths = [(totals[k], n) for k, n in counts.items() if totals.get(k) is not None]
    if not lengths:
        return {}
    lo, hi = min(t for t, _ in lengths), max(t for t, _ in lengths)
    width = max(1, -(-(hi - lo + 1) // bins))
    out = [0] * -(-(hi - lo + 1) // width)
    for length, n in lengths:
        out[(length - lo) // width] += n
    return {"edges": [lo + i * width for i in range(len(out) + 1)], "counts": out}


def make(data: dict[str, Any], knobs: dict[str, int], recipe_file: str) -> tuple[Plan, list[Finding]]:
    """Load the recipe's data through swift (raises swift_data.DataLoadError) and plan it."""
    keys = [(k, e) for k in ("dataset", "val_dataset") for e in data.get(k) or []]
    problem = swift_data.offline_problem([e for _, e in keys], data)
    if problem:
        raise swift_data.DataLoadError(problem)
    if swift_data.setting(data, "streaming"):
        raise swift_data.DataLoadError("streaming: the plan needs the rows counted; plan without streaming, or "
                                       "launch with --skip-preflight")
    rows = _Rows(data, knobs)
    owner: dict[str, EntryPlan] = {}
    entries = []
    for key, text in keys:
        print(f"[data]  loading {text} through swift's loader ...", flush=True)
        entry = swift_data.load_entry(text, data)
        seen: set[str] = set()
        parts, n = [], 0
        for part in entry.parts:
            for row in part.dataset:
                k = rows.see(row, f"{recipe_file}: {key} {text} ({part.subset}/{part.split})".replace(" (/file)", ""),
                             report=entry.source != "local")
                seen.add(k)
            parts.append({"subset": part.subset, "split": part.split, "rows": len(part.dataset)})
            n += len(part.dataset)
        plan_entry = EntryPlan(key, text, entry.source, parts, n, len(seen), entry.sample)
        for k in seen:
            owner.setdefault(k, plan_entry)
        entries.append(plan_entry)
    swift_args = {k: data[k] for k in DATA_ARGS if k in data}
    plan = Plan(entries, swift_args, token_note=rows.setup.note)
    train, held = swift_data.load_like_sft(data)
    in_train, in_held, tags = Counter(), Counter(), Counter()
    for ds, counts in ((train, in_train), (held, in_held)):
        for row in ds if ds is not None else ():
            counts[rows.see(row, recipe_file, report=False)] += 1
            if counts is in_train:
                tags[image_tag(row)] += 1
    tags.pop(None, None)
    plan.image_tag = tags.most_common(1)[0][0] if tags else None
    for k, n in in_train.items():
        if k in owner:
            owner[k].training += n
            owner[k].training_unique += 1
    for k, n in in_held.items():
        if k in owner:
            owner[k].held_out += n
    plan.training, plan.training_unique = sum(in_train.values()), len(in_train)
    plan.held_out = sum(in_held.values())
    plan.held_out_from = "val_dataset" if data.get("val_dataset") else (
        "split_dataset_ratio" if plan.held_out else "")
    plan.overlap = len(set(in_held) & set(in_train))
    limit = data.get("max_length")
    if limit:
        plan.too_long_training = sum(n for k, n in in_train.items() if (rows.totals.get(k) or 0) > limit)
        plan.too_long_held_out = sum(n for k, n in in_held.items() if (rows.totals.get(k) or 0) > limit)
    plan.tokens = _percentiles(in_train, rows.totals)
    plan.histogram = _histogram(in_train, rows.totals)
    epochs = float(data.get("num_train_epochs", swift_data.setting(data, "num_train_epochs") or 1))
    if plan.training_unique:
        plan.effective_epochs = round(epochs * plan.training / plan.training_unique, 2)
    plan.warnings = _warnings(plan, data, epochs)
    findings = list(rows.findings)
    if rows.errors:
        findings.append(Finding("error", "data", f"{rows.errors} problem(s) in the rows swift loads from the hub "
                                                 f"(shown above, up to {MAX_ROW_FINDINGS}); {rows.setup.note}"))
    return plan, findings


def _warnings(plan: Plan, data: dict[str, Any], epochs: float) -> list[str]:
    out = []
    for e in plan.entries:
        own = [p for p in e.parts if p["split"] in OWN_EVAL_SPLITS]
        if e.key == "dataset" and own:
            shown = " and ".join(f"{p['split']} ({p['rows']:,} rows)" for p in own)
            out.append(f"{e.entry}: swift trains on the dataset's own {shown} split(s): a later score on them "
                       f"measures training data; train on one split with ID@train (e.g. "
                       f"{_view(e.entry, 'train')}) and evaluate on ID@validation / ID@test")
    if plan.overlap:
        out.append(f"{plan.overlap:,} of the {plan.held_out:,} held-out rows also occur in training (same image bytes "
                   f"and answer): their evaluation is not held out; deduplicate the data")
    if plan.held_out_from and plan.held_out < MIN_HELD_OUT:
        how = (f"split_dataset_ratio {swift_data.setting(data, 'split_dataset_ratio')} of the loaded rows, taken "
               f"before the #N sampling" if plan.held_out_from == "split_dataset_ratio" else "val_dataset")
        fix = "a larger val_dataset" if plan.held_out_from == "val_dataset" else \
            "a larger split_dataset_ratio, or a val_dataset"
        out.append(f"only {plan.held_out} row(s) held out for evaluation ({how}): eval loss and scores on so few "
                   f"are noise; hold out at least {MIN_HELD_OUT} ({fix})")
    elif not plan.held_out_from:
        out.append("no rows are held out (split_dataset_ratio 0, no val_dataset): nothing is evaluated during "
                   "training, and `python infer.py RUN` has no held-out rows to score")
    if plan.effective_epochs is not None and abs(plan.effective_epochs - epochs) > 0.05 * epochs and \
            not int(data.get("max_steps", -1) or -1) > 0:
        out.append(f"the {plan.training:,} training rows are {plan.training / plan.training_unique:.1f}x the "
                   f"{plan.training_unique:,} distinct ones (#N sampling): num_train_epochs {epochs:g} is "
                   f"{plan.effective_epochs:g} passes over the unique data")
    if plan.too_long_training:
        out.append(f"{plan.too_long_training:,} training row(s) are longer than max_length {data.get('max_length')}: "
                   f"swift drops them")
    return out


def _view(entry: str, split: str) -> str:
    import re
    m = re.match(r"^((?:\w+::)?[^:#]+)(.*)$", entry)
    return f"{m.group(1)}@{split}{m.group(2)}" if m else entry


def render(plan: Plan) -> str:
    """The plan as printed before launch."""
    lines = ["# data plan (swift's own loader; the rows it will train and evaluate on)"]
    for e in plan.entries:
        lines.append(f"{e.key} {e.entry}  [{e.source}]")
        for p in e.parts:
            where = f"{p['subset']}/{p['split']}" if p["split"] != "file" else "file"
            lines.append(f"    {where:32} {p['rows']:>9,} rows")
        sample = f"; #{e.sample:,} -> {e.training:,} training rows" if e.sample else ""
        lines.append(f"    {e.rows:,} rows, {e.unique:,} distinct{sample}"
                     + (f" ({e.repeat:.1f}x each)" if e.training and e.repeat > 1.05 else "")
                     + (f"; {e.held_out:,} held out" if e.held_out else ""))
    lines.append(f"training:   {plan.training:,} rows ({plan.training_unique:,} distinct)"
                 + (f", {plan.too_long_training:,} longer than max_length (dropped by swift)"
                    if plan.too_long_training else ""))
    if plan.tokens:
        lines.append("tokens:     " + ", ".join(f"{k} {v:,}" for k, v in plan.tokens.items())
                     + f"  ({plan.token_note})")
    lines.append(f"evaluation: {plan.held_out:,} rows held out" + (f" ({plan.held_out_from})" if plan.held_out_from
                                                                   else ""))
    if plan.effective_epochs is not None:
        lines.append(f"epochs:     {plan.effective_epochs:g} passes over the distinct training rows")
    return "\n".join(lines)
