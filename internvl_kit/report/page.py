"""The page skeleton and the pieces both pages use: one self-contained HTML file (CSS, script, data and
images inline), the metrics table, the gallery entries and their filter."""
from __future__ import annotations

import json
from html import escape
from importlib import resources
from typing import Any, Iterable

from ..infer import boxes
from .formulas import to_mathml
from .predictions import Row, Scoring, Thumbnails

METRICS = (("exact_match", "exact match", max), ("normalized_exact_match", "normalized exact match", max),
           ("cer", "CER", min), ("chrf", "chrF", max), ("bleu", "BLEU", max), ("samples", "samples", None))
BOX_METRICS = (("mean_iou", "mean IoU", max), ("acc_at_0.5", "Acc@0.5", max),
               ("precision_at_0.5", "precision@0.5", max), ("recall_at_0.5", "recall@0.5", max))
FILTERS = (("all", "all rows"), ("failures", "failures"), ("wrong", "wrong answers"), ("error", "could not run"),
           ("correct", "correct"), ("better", "tuned right, base wrong"), ("worse", "tuned wrong, base right"))


def _asset(name: str) -> str:
    return resources.files("internvl_kit.report").joinpath("assets", name).read_text(encoding="utf-8")


def document(title: str, subtitle: str, nav: list[tuple[str, str]], body: str, data: dict[str, Any]) -> str:
    """The whole page. The embedded JSON is escaped so that no string in it can close its script element."""
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    links = "".join(f'<a href="#{escape(anchor)}">{escape(label)}</a>' for anchor, label in nav)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
            f'style-src \'unsafe-inline\'; script-src \'unsafe-inline\'">'
            f"<title>{escape(title)}</title><style>{_asset('report.css')}</style></head><body>"
            f"<header><h1>{escape(title)}</h1><div class=\"sub\">{subtitle}</div><nav>{links}</nav></header>"
            f'<main>{body}</main><script type="application/json" id="report-data">{blob}</script>'
            f"<script>{_asset('report.js')}</script></body></html>\n")


def section(anchor: str, title: str, content: str) -> str:
    return f'<section id="{escape(anchor)}"><h2>{escape(title)}</h2>{content}</section>'


def table(head: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    """A table of cells that are already HTML (escape text before passing it)."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}f}" if isinstance(value, float) else escape(str(value))


def metrics_table(columns: list[tuple[str, dict[str, Any]]]) -> str:
    """Metrics side by side, the best of each row in bold (lower CER, higher everything else)."""
    rows = []
    present = [m for m in BOX_METRICS if any(m[0] in c for _, c in columns)]    # grounding scores, when any
    for key, label, best in METRICS[:-1] + tuple(present) + METRICS[-1:]:
        values = [m.get(key) for _, m in columns]
        known = [v for v in values if isinstance(v, (int, float))]
        top = best(known) if best and len(known) > 1 and len(set(known)) > 1 else None
        rows.append([escape(label)] + [f'<td class="num{" best" if v == top and top is not None else ""}">'
                                       f"{number(v)}</td>" for v in values])
    return table(["metric"] + [escape(name) for name, _ in columns], rows, "metrics")


def text_or_formula(text: str, latex: bool) -> str:
    """Answer text, or for a LaTeX row the rendered formula above its source (source alone if it does not parse)."""
    source = f'<span class="src">{escape(text)}</span>'
    if not latex:
        return source
    markup = to_mathml(text)
    return (f'<span class="formula">{markup}</span>{source}' if markup
            else f'{source}<span class="warn"> (not a valid formula)</span>')


BOX_COLOURS = {"reference": "#1eaa3c", "answer": "#c81ec8"}      # as infer.py --draw draws them


def _overlay(row: Row, answers: list[tuple[str, Any]]) -> str:
    """The reference's and the first answer's boxes over the first image: the 0-1000 grid is the SVG's viewBox,
    stretched to the image, so no pixel size is needed."""
    shapes = [(b, "reference") for b in boxes.parse(row.reference)]
    first = next((a for _, a in answers if a is not None), None)
    shapes += [(b, "answer") for b in boxes.parse(first.text)] if first is not None else []
    if not shapes:
        return ""
    rects = "".join(f'<rect class="box-{kind}" x="{b.x1:g}" y="{b.y1:g}" width="{b.x2 - b.x1:g}" height="{b.y2 - b.y1:g}" '
                    f'fill="none" stroke="{BOX_COLOURS[kind]}" stroke-width="14"><title>{escape(kind)}'
                    f'{": " + escape(b.label) if b.label else ""}</title></rect>' for b, kind in shapes)
    return f'<svg class="boxes" viewBox="0 0 1000 1000" preserveAspectRatio="none">{rects}</svg>'


def thumbs(row: Row, thumbnails: Thumbnails, answers: list[tuple[str, Any]] = ()) -> str:
    out = []
    for i, path in enumerate(row.images):
        uri = thumbnails(path)
        overlay = _overlay(row, list(answers)) if i == 0 and uri else ""
        out.append(f'<div class="thumb"><img src="{uri}" alt="{escape(path)}" title="{escape(path)}">{overlay}</div>'
                   if uri else f'<div class="noimg" title="{escape(path)}">image not found</div>')
    return "".join(out) or '<div class="noimg">no image</div>'


def statuses(row: Row, base: str | None = "base") -> str:
    """The filter tokens of a row: failures/error/wrong/correct, and better/worse than the base's answer."""
    tokens = [row.status] + (["failures"] if row.status != "correct" else [])
    if base and row.error is None and base in row.answers:
        tuned, other = row.answers["tuned"].correct, row.answers[base].correct
        tokens += ["better"] if tuned and not other else ["worse"] if other and not tuned else []
    return " ".join(tokens)


def answer_lines(answers: list[tuple[str, Any]], latex: bool) -> str:
    """`who: answer` lines; each answer is a Scored or None (that model has no answer for this row)."""
    out = []
    for who, scored in answers:
        if scored is None:
            out.append(f'<span class="who">{escape(who)}</span><span class="src">(no answer)</span>')
            continue
        mark = "ok" if scored.correct else "no"
        out.append(f'<span class="who {mark}">{escape(who)}</span>'
                   f'<span>{text_or_formula(scored.text, latex)} <span class="meta">CER {scored.cer:.2f}</span></span>')
    return "".join(out)


PROMPT_SHOWN = 300          # characters of a prompt shown before it folds away (an over-long row is long)


def _prompt(text: str) -> str:
    if len(text) <= PROMPT_SHOWN:
        return f'<span class="src">{escape(text)}</span>'
    return (f'<details><summary class="src">{escape(text[:PROMPT_SHOWN])}&hellip; ({len(text) - PROMPT_SHOWN:,} more '
            f'characters)</summary><span class="src">{escape(text)}</span></details>')


def entry(row: Row, thumbnails: Thumbnails, answers: list[tuple[str, Any]], status: str, search: str) -> str:
    error = f'<div class="warn">could not run: {escape(row.error)}</div>' if row.error else ""
    return (f'<article class="entry row s-{escape(row.status)}" data-status="{escape(status)}" '
            f'data-search="{escape(search.lower())}"><div class="thumbs">{thumbs(row, thumbnails, answers)}</div>'
            f'<div><div class="meta">line {row.line}</div><div><b>prompt</b> {_prompt(row.prompt)}</div>'
            f'<div class="answers"><span class="who">reference</span>'
            f'<span>{text_or_formula(row.reference, row.latex)}</span>{answer_lines(answers, row.latex)}</div>'
            f"{error}</div></article>")


def gallery(entries: list[str], dataset: str, note: str = "",
            filters: tuple[tuple[str, str], ...] = FILTERS) -> str:
    options = "".join(f'<option value="{v}">{escape(label)}</option>' for v, label in filters)
    return (f'<div class="meta">{escape(dataset)}{note}</div><div class="filters">'
            f'<input type="search" id="filter-text" placeholder="filter by text (prompt, answers, image path)">'
            f'<select id="filter-status">{options}</select><span id="filter-count"></span></div>'
            f'<div class="gallery">{"".join(entries)}</div>')


def scoring_search(row: Row) -> str:
    return " ".join([row.prompt, row.reference, *row.images, *(a.text for a in row.answers.values()),
                     row.error or ""])


def scoring_columns(scoring: Scoring) -> list[tuple[str, dict[str, Any]]]:
    return [(name, scoring.report["metrics"][name]) for name in scoring.models if name in scoring.report["metrics"]]
