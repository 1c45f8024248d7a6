"""validate against swift's own loader and template, file by file and row by row, on generated files
(row_grammar.py): the shared harness of the CI differential test and benchmarks/parity_classes.py.

Every file goes once through `swift.dataset.load_dataset` (its rows are template-independent), and every row
swift loaded through `template.encode` of each template's tiny model; the same file goes through data_tools'
Validator for each template. Rows are matched by the marker in their answer. A disagreement is a class
(file-level, row verdict, token count); the deliberate differences the README lists are counted apart.
"""
from __future__ import annotations

import collections
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# template -> (tiny model, MAX_NUM, INPUT_SIZE): the settings the chat templates read when they are made
TINY = {"internvl_hf": ("builtin:tiny-internvl-hf", None, None), "internvl2_5": ("builtin:tiny-internvl3", 6, 56),
        "internvl3_5": ("builtin:tiny-internvl3_5", 6, 56)}

# The README's deliberate differences: validate refuses a row swift trains, for a reason (code, and the
# message that tells this reason from others of the code; None: any message of the code).
DELIBERATE = (
    ("extra-tags", None),                                               # swift keeps the tags as literal text
    ("roles", re.compile(r"messages\[[01]\] is 'assistant' where 'user'")),   # starts with the assistant
    ("roles", re.compile(r"the last message is not the assistant's")),        # ends on the user
    # grounding rows swift trains on, but not as the user meant (data_tools/grounding.py)
    ("grounding", re.compile(r"swift keeps the (last \d+ <|tags as literal)|swift ignores the last|swift swaps "
                             r"them|outside its \d+x\d+ image|norm1 but a value outside|look normalised|reads its "
                             r"characters|swift knows 'real'|boxes but no image|other rows of the file give")),
)


@dataclass
class Oracle:
    """One template: swift's template object and the Validators (header-only and --deep) counting for it."""
    name: str
    template: Any
    validator: Any
    deep: Any


def oracles(names: list[str] | None = None) -> list[Oracle]:
    from swift import get_processor, get_template

    from data_tools.tokens import Counter, TilingConfig
    from data_tools.validate import Options, Validator
    from internvl_kit.models import builtin
    out = []
    for name in names or list(TINY):
        ref, max_num, input_size = TINY[name]
        for var, value in (("MAX_NUM", max_num), ("INPUT_SIZE", input_size)):     # read when the template is made
            os.environ.pop(var, None) if value is None else os.environ.__setitem__(var, str(value))
        model = builtin.resolve(ref)
        template = get_template(get_processor(str(model), download_model=False,
                                              **({"model_type": "internvl"} if name == "internvl_hf" else {})),
                                template_type=name)
        template.set_mode("train")
        counter = Counter(name, TilingConfig.for_model(model, name, max_num, input_size), model)
        out.append(Oracle(name, template, Validator(Options(counter=counter)),
                          Validator(Options(counter=counter, deep=True))))
    for var in ("MAX_NUM", "INPUT_SIZE"):
        os.environ.pop(var, None)
    return out


def marker_of(value: Any, markers: list[str]) -> str | None:
    text = json.dumps(value, ensure_ascii=False)
    return next((m for m in sorted(markers, key=len, reverse=True)
                 if re.search(re.escape(m) + r"(?![0-9a-z])", text)), None)


def swift_load(path: Path) -> list[dict] | None:
    """The rows swift's loader makes of the file, or None when it fails on the file."""
    from swift.dataset import load_dataset
    try:
        ds, _ = load_dataset([str(path)], num_proc=1, load_from_cache_file=False)
    except Exception:  # noqa: BLE001 - whatever swift raises, the file does not load
        return None
    return [{k: v for k, v in row.items() if k != "dataset"} for row in ds]


def swift_tokens(rows: list[dict], markers: list[str], template) -> dict[str | None, int | None]:
    """marker -> swift's token count for each row it loaded (None: its template refuses the row)."""
    out = {}
    for row in rows:
        try:
            tokens = len(template.encode(row)["input_ids"])
        except Exception:  # noqa: BLE001 - any failure is swift refusing the row
            tokens = None
        out[marker_of(row.get("messages"), markers)] = tokens
    return out


@dataclass
class Ours:
    loads: bool
    tokens: dict[str, int] = field(default_factory=dict)                      # accepted rows
    issues: dict[str, list[tuple[str, str]]] = field(default_factory=dict)    # (code, message) per row
    kept: set[str] = field(default_factory=set)         # rows a late mixed-formats code leaves loaded


def our_side(path: Path, markers: list[str], validator) -> Ours:
    """What validate says of each row of the file, attributed per JSON object (a line may hold several)."""
    from data_tools import arrow_json
    from data_tools.validate import ERRORS, Report
    raw_lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    pending: list[tuple[str, str]] = []
    seen_on_line: dict[int, int] = {}
    where_of: dict[tuple[int, int], str] = {}
    ours = Ours(True)

    def on_row(n: int, codes: list[str], sample) -> None:
        i = seen_on_line.get(n, 0)
        seen_on_line[n] = i + 1
        issues = list(pending)
        pending.clear()
        if sample is not None:
            found = [marker_of(sample.row.get("messages"), markers)]
        else:
            objects = arrow_json.values(raw_lines[n - 1].lstrip("\ufeff")) if n <= len(raw_lines) else None
            if objects and i < len(objects):
                found = [marker_of(objects[i], markers)]
            else:                                   # the line did not parse: every row on it
                found = [m for m in markers if n <= len(raw_lines) and marker_of(raw_lines[n - 1], [m])]
        for marker in found:
            ours.issues.setdefault(marker, []).extend(issues)
            where_of[(n, i)] = marker
            if sample is not None and not {c for c, _ in issues} & ERRORS:
                tokens = validator.check_length(sample, lambda *a: None)
                if tokens is not None:
                    ours.tokens[marker] = tokens

    verdict = validator.validate_file(path, Report(), lambda i: pending.append((i.code, i.message)), on_row=on_row)
    ours.loads = verdict.loads
    for where, codes in verdict.late.items():
        marker = where_of.get(where)
        if marker is not None:
            ours.issues.setdefault(marker, []).extend((c, "") for c in codes)
            ours.tokens.pop(marker, None)
            if where not in verdict.dropped:
                ours.kept.add(marker)
    return ours


def deliberate(issues: list[tuple[str, str]], kept: bool) -> bool:
    """Whether every error validate gave the row is a deliberate difference (the README lists them): the
    ones in DELIBERATE, and a mixed-formats row swift keeps (it trains it without its `image`, so what
    validate found wrong with that image does not reach swift either)."""
    from data_tools.validate import ERRORS
    errors = [(c, m) for c, m in issues if c in ERRORS]
    ignored = {"mixed-formats", "image-missing", "image-bad", "relative-path"} if kept and \
        any(c == "mixed-formats" for c, _ in errors) else set()
    return bool(errors) and all(
        code in ignored or any(code == c and (rx is None or rx.search(message)) for c, rx in DELIBERATE)
        for code, message in errors)


def compare(path: Path, markers: list[str], loaded: list[dict] | None, oracle: Oracle
            ) -> tuple[list[str], collections.Counter]:
    """(the disagreement classes of one file for one template, a tally of what agreed: rows trained with equal
    token counts, rows both refuse, files both fail, and the deliberate differences)."""
    sentinel = next(m for m in markers if m.endswith("ok"))
    ours = our_side(path, markers, oracle.validator)
    swift = swift_tokens(loaded, markers, oracle.template) if loaded is not None else None
    tally: collections.Counter = collections.Counter()
    if swift is None or sentinel not in swift:
        if ours.loads:
            return ["file: swift's loader fails it, validate reports no file-level error"], tally
        tally["file fails for both"] += 1
        return [], tally
    if not ours.loads:
        return ["file: validate reports a file-level error, swift loads it"], tally
    out, deep = [], None
    for m in markers:
        s, o = swift.get(m), ours.tokens.get(m)
        if s is not None and o is None:
            if deliberate(ours.issues.get(m, []), m in ours.kept):
                tally["deliberate difference"] += 1
            else:
                codes = sorted({c for c, _ in ours.issues.get(m, [])}) or ["?"]
                out.append(f"row: swift trains it, validate refuses ({','.join(codes)})")
        elif o is not None and s is None:
            if any(c == "image-damaged" for c, _ in ours.issues.get(m, [])):
                deep = deep or our_side(path, markers, oracle.deep)        # --deep is exact
                if m not in deep.tokens:
                    tally["row refused by both (--deep)"] += 1
                    continue
            out.append("row: validate accepts it, swift " + ("drops it" if m not in swift else "cannot encode it"))
        elif s is not None and s != o:
            out.append("row: token counts differ")
        elif s is not None:
            tally["row trained, equal tokens"] += 1
        else:
            tally["row refused by both"] += 1
    return out, tally


def compare_files(files: list[tuple[Path, list[str]]]) -> tuple[list[str], collections.Counter]:
    """Every file against every template: the disagreements (named by template and file) and the tally."""
    found, tally = [], collections.Counter()
    loaded = {path: swift_load(path) for path, _ in files}
    for oracle in oracles():
        for path, markers in files:
            classes, agreed = compare(path, markers, loaded[path], oracle)
            found += [f"{oracle.name} {path.name}: {c}" for c in classes]
            tally += agreed
    return found, tally
