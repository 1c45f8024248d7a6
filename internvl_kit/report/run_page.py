"""One run's report: status, curves, latest scores and predictions, data plan, recipe and stack."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from . import diffs, predictions, runlog
from .page import (document, entry, gallery, metrics_table, number, scoring_columns, scoring_search, section,
                   statuses, table)

REPORT = "report.html"
LIVE_S = 600          # a log written to this recently is a run still going (unless train.py says it ended)


@dataclass
class Run:
    """What a run directory says about itself."""
    path: Path
    record: dict[str, Any]
    log: runlog.RunLog
    scoring: predictions.Scoring | None
    ended: bool = False                 # train.py says its swift has exited (else: guessed from the log's age)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def recipe(self) -> dict[str, Any]:
        return self.record.get("recipe") if isinstance(self.record.get("recipe"), dict) else {}

    @property
    def status(self) -> tuple[str, str]:
        """(css class, words): finished, or where it stands (a run still going or one that stopped)."""
        log = self.log
        if log.done:
            return "done", f"finished: {log.last_step:,} steps"
        at = f"{log.last_step:,} of {log.max_steps:,} steps" if log.max_steps else f"{log.last_step:,} steps"
        log_file = self.path / runlog.LOG
        live = not self.ended and log_file.is_file() and time.time() - log_file.stat().st_mtime < LIVE_S
        return ("running", f"in progress: {at}") if live else ("stopped", f"not finished: {at}")


def read(path: Path, ended: bool = False) -> Run:
    try:
        record = json.loads((path / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    return Run(path, record if isinstance(record, dict) else {}, runlog.read(path), predictions.latest(path), ended)


def charts(run: Run) -> list[dict[str, Any]]:
    marks = [{"x": s, "label": f"ckpt {s}", "kind": "checkpoint"} for s in run.log.checkpoints] + \
            [{"x": s, "label": f"resumed from {s}", "kind": "resume"} for s in run.log.resumes]
    return [dict(c, marks=marks) for c in run.log.charts()]


def _cards(run: Run) -> str:
    log, cards = run.log, []
    cls, words = run.status
    cards.append(("status", f'<span class="status-{cls}">{escape(words)}</span>'))
    for key, label in (("loss", "last loss"), ("eval_loss", "last eval loss")):
        if log.series.get(key):
            cards.append((label, number(log.series[key][-1][1], 4)))
    if len(log.series.get("eval_loss", [])) > 1:
        step, best = min(log.series["eval_loss"], key=lambda p: p[1])
        cards.append(("best eval loss", f"{best:.4f} <span class=\"meta\">@ {step}</span>"))
    if "train_runtime" in log.summary:
        cards.append(("runtime", f"{float(log.summary['train_runtime']):.0f} s"))
    cards.append(("checkpoints", escape(", ".join(map(str, log.checkpoints)) or "none")))
    return '<div class="cards">' + "".join(f'<div class="card"><div class="k">{escape(k)}</div><div class="v">{v}'
                                           f"</div></div>" for k, v in cards) + "</div>"


def _curves(run: Run, chart_list: list[dict[str, Any]]) -> str:
    if not chart_list:
        return '<p class="meta">swift has logged no step yet (logging.jsonl is empty or missing).</p>'
    skipped = f'<p class="warn">{run.log.skipped_lines} unreadable line(s) of logging.jsonl skipped.</p>' \
        if run.log.skipped_lines else ""
    return skipped + '<div class="charts">' + "".join(f'<div class="chart" data-chart="{i}"></div>'
                                                      for i in range(len(chart_list))) + "</div>"


def _scores(run: Run) -> str:
    files = predictions.metrics_files(run.path)
    if not files:
        return ('<p class="meta">No scores yet: <code>python infer.py ' + escape(str(run.path)) +
                ' --compare-base</code> scores the held-out rows and refreshes this report.</p>')
    rows = []
    for f in reversed(files):
        rep = predictions.read_metrics(f) or {"metrics": {}}
        tuned = rep["metrics"].get("tuned", {})
        rows.append([escape(f.relative_to(run.path).parts[0]), escape(str(rep.get("dataset", f.name))),
                     f'<td class="num">{number(tuned.get("normalized_exact_match"))}</td>',
                     f'<td class="num">{number(tuned.get("cer"))}</td>', f'<td class="num">{number(tuned.get("samples"))}</td>'])
    history = table(["checkpoint", "dataset", "normalized EM", "CER", "samples"], rows) if len(rows) > 1 else ""
    latest = ""
    if run.scoring:
        s = run.scoring
        latest = (f'<p class="meta">latest: {escape(str(s.metrics_file.relative_to(run.path)))}</p>'
                  + metrics_table(scoring_columns(s)))
    return latest + history


def _gallery(run: Run, thumbnails: predictions.Thumbnails) -> str:
    s = run.scoring
    if s is None:
        return '<p class="meta">No predictions yet (infer.py writes them).</p>'
    others = [m for m in s.models if m != "tuned"]
    items = [entry(r, thumbnails, [(m, r.answers.get(m)) for m in s.models],
                   statuses(r, others[0] if others else None), scoring_search(r)) for r in s.rows]
    failed = sum(r.status != "correct" for r in s.rows)
    return gallery(items, s.dataset, f" &middot; {len(s.rows)} rows, {failed} not correct (shown first)")


def _data(run: Run) -> str:
    plan = run.record.get("data_plan")
    if not isinstance(plan, dict):
        return '<p class="meta">No data plan in run.json (launched with --skip-preflight, or a resume).</p>'
    rows = [[escape(e.get("key", "")), escape(str(e.get("entry", ""))), escape(e.get("source", "")),
             f'<td class="num">{number(e.get("rows"))}</td>', f'<td class="num">{number(e.get("unique"))}</td>',
             f'<td class="num">{number(e.get("training"))}</td>', f'<td class="num">{number(e.get("held_out"))}</td>']
            for e in plan.get("entries", [])]
    facts = [("training rows", number(plan.get("training"))), ("held out", number(plan.get("held_out"))),
             ("dropped (over max_length)", number((plan.get("too_long_training") or 0) + (plan.get("too_long_held_out") or 0))),
             ("overlap held-out/training", number(plan.get("overlap"))),
             ("tokens", escape(", ".join(f"{k} {v:,}" for k, v in (plan.get("tokens") or {}).items())) or "n/a")]
    out = table(["", "entry", "source", "rows", "distinct", "training", "held out"], rows)
    out += '<div class="cards" style="margin-top:10px">' + "".join(
        f'<div class="card"><div class="k">{escape(k)}</div><div class="v">{v}</div></div>' for k, v in facts) + "</div>"
    out += f'<p class="meta">{escape(plan.get("token_note", ""))}</p>'
    out += "".join(f'<p class="warn">{escape(w)}</p>' for w in plan.get("warnings") or [])
    return out


def histogram_chart(run: Run) -> dict[str, Any] | None:
    hist = (run.record.get("data_plan") or {}).get("histogram") or {}
    if not hist.get("counts"):
        return None
    limit = run.recipe.get("max_length")
    marks = [{"x": limit, "label": f"max_length {limit}", "kind": "resume"}] if limit else []
    return {"title": "Token length of the training rows", "ylabel": "rows", "xlabel": "tokens", "kind": "bars",
            "edges": hist["edges"], "counts": hist["counts"], "lines": [], "marks": marks}


def _recipe(run: Run) -> str:
    rec = run.record
    changed = diffs.against_base(run.recipe, rec.get("recipe_base"))
    chain = " &larr; ".join(escape(Path(p).name) for p in reversed(rec.get("recipe_chain") or []))
    out = f'<p class="meta">{escape(str(rec.get("recipe_file", "")))} ({chain})'
    out += (f"; overrides: <code>{escape(' '.join(rec['overrides']))}</code>" if rec.get("overrides") else "") + "</p>"
    from_cli = {o.split("=", 1)[0].lstrip("~") for o in rec.get("overrides") or []}
    if changed:
        out += table(["key", "base", "this run"], [
            [f"<code>{escape(k)}</code>" + (' <span class="meta">(override)</span>' if k in from_cli else ""),
             f'<span class="diff-old">{escape(diffs.show(old))}</span>', escape(diffs.show(new))]
            for k, old, new in changed])
    elif "recipe_base" not in rec:
        out += '<p class="meta">(this run predates the saved base: the full recipe is below)</p>'
    out += f"<details><summary>resolved recipe</summary><pre>{escape(_yaml(run.recipe))}</pre></details>"
    if rec.get("command"):
        out += f"<details><summary>swift command</summary><pre>{escape(rec['command'])}</pre></details>"
    return out


def _yaml(data: dict[str, Any]) -> str:
    import yaml
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _stack(run: Run) -> str:
    versions = run.record.get("versions") or {}
    return table(["package", "version"], [[escape(k), escape(str(v or "not installed"))]
                                          for k, v in sorted(versions.items())]) if versions else \
        '<p class="meta">no versions recorded</p>'


def render(run: Run, thumbnails: predictions.Thumbnails | None = None) -> str:
    thumbnails = thumbnails or predictions.Thumbnails()
    chart_list = charts(run)
    hist = histogram_chart(run)
    data_body = _data(run) + (f'<div class="charts"><div class="chart" data-chart="{len(chart_list)}"></div></div>'
                              if hist else "")
    body = (section("overview", "Overview", _cards(run)) + section("curves", "Curves", _curves(run, chart_list))
            + section("scores", "Scores", _scores(run)) + section("predictions", "Predictions", _gallery(run, thumbnails))
            + section("data", "Data", data_body) + section("recipe", "Recipe", _recipe(run))
            + section("stack", "Stack", _stack(run)))
    rec = run.record
    subtitle = escape(f"{rec.get('model', '?')} · template {rec.get('template', '?')} · {rec.get('swift_command', 'sft')}"
                      f" · created {rec.get('created', '?')} · {run.path}")
    nav = [("curves", "Curves"), ("scores", "Scores"), ("predictions", "Predictions"), ("data", "Data"),
           ("recipe", "Recipe"), ("stack", "Stack")]
    return document(f"Run {run.name}", subtitle, nav, body,
                    {"charts": chart_list + ([hist] if hist else [])})
