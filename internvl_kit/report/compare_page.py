"""Several runs on one page: curves overlaid on shared axes, the recipe keys that differ, metrics side by
side with the best marked, and the same rows' predictions in adjacent columns."""
from __future__ import annotations

from html import escape
from typing import Any

from . import diffs, runlog
from .page import document, entry, gallery, metrics_table, number, section, table
from .predictions import Row, Thumbnails
from .run_page import Run

COMPARE_FILTERS = (("all", "all rows"), ("differ", "runs disagree"), ("failures", "any run wrong"),
                   ("correct", "every run correct"), ("error", "could not run"))


def _line_for(run: Run, key: str) -> list[list[float]]:
    points = run.log.series.get(key) or []
    return runlog.thin(runlog.smooth(points) if key == "loss" and len(points) > 2 else points)


def charts(runs: list[Run]) -> list[dict[str, Any]]:
    """One chart per logged key, one line per run (the training loss smoothed, as each run's report shows it)."""
    keys = [k for _, _, ks in runlog.CHARTS for k in ks]
    keys += sorted({k for r in runs for k in r.log.series} - set(keys))
    out = []
    for key in keys:
        lines = [{"name": r.name, "points": _line_for(r, key), "slot": i,       # a run keeps its colour
                  "style": "eval" if key.startswith("eval_") else "main"}
                 for i, r in enumerate(runs) if r.log.series.get(key)]
        if lines:
            title = "loss (smoothed)" if key == "loss" else key
            out.append({"title": title, "ylabel": key, "lines": lines, "marks": []})
    return out


def _runs_table(runs: list[Run]) -> str:
    rows = []
    for r in runs:
        cls, words = r.status
        loss = r.log.series.get("loss") or []
        ev = r.log.series.get("eval_loss") or []
        rows.append([f"<b>{escape(r.name)}</b>", escape(str(r.record.get("recipe_file", ""))),
                     f'<span class="status-{cls}">{escape(words)}</span>',
                     f'<td class="num">{number(loss[-1][1], 4) if loss else "n/a"}</td>',
                     f'<td class="num">{number(min(v for _, v in ev), 4) if ev else "n/a"}</td>',
                     escape(str(r.path / "report.html"))])
    return table(["run", "recipe", "status", "last loss", "best eval loss", "report"], rows)


def _recipe_diff(runs: list[Run]) -> str:
    changed = diffs.between([r.recipe for r in runs])
    if not changed:
        return '<p class="meta">The runs\' recipes are the same (apart from output_dir).</p>'
    return table(["key"] + [escape(r.name) for r in runs],
                 [[f"<code>{escape(k)}</code>"] + [escape(diffs.show(v)) for v in values] for k, values in changed])


def _metrics(runs: list[Run]) -> str:
    scored = [r for r in runs if r.scoring and "tuned" in r.scoring.report["metrics"]]
    if not scored:
        return '<p class="meta">None of the runs has been scored yet (python infer.py RUN).</p>'
    datasets = {r.scoring.dataset for r in scored}
    note = "" if len(datasets) == 1 else \
        '<p class="warn">The runs were last scored on different datasets: the numbers are not comparable.</p>'
    columns = [(r.name, r.scoring.report["metrics"]["tuned"]) for r in scored]
    base = next((r.scoring.report["metrics"]["base"] for r in scored if "base" in r.scoring.report["metrics"]), None)
    if base is not None and len(datasets) == 1:
        columns.append(("base model", base))
    sources = table(["run", "scored on"], [[escape(r.name), escape(r.scoring.dataset)] for r in scored])
    return note + metrics_table(columns) + sources


def _predictions(runs: list[Run], thumbnails: Thumbnails) -> str:
    scored = [r for r in runs if r.scoring]
    if len(scored) < 2:
        return '<p class="meta">Fewer than two runs have predictions: nothing to put side by side.</p>'
    dataset = scored[0].scoring.dataset
    same = [r for r in scored if r.scoring.dataset == dataset]
    if len(same) < 2:
        return '<p class="warn">The runs\' latest predictions are on different datasets: score them on the same one ' \
               '(python infer.py RUN --dataset FILE) to see their answers side by side.</p>'
    by_line = [{row.line: row for row in r.scoring.rows} for r in same]
    items = []
    for row in same[0].scoring.rows:                       # the first run's order: its failures first
        mine = [lines.get(row.line) for lines in by_line]
        answers = [(r.name, m.answers.get("tuned") if m and m.reference == row.reference else None)
                   for r, m in zip(same, mine)]
        items.append(entry(row, thumbnails, answers, _tokens(row, [a for _, a in answers]),
                           " ".join([row.prompt, row.reference, *row.images,
                                     *(a.text for _, a in answers if a is not None)])))
    skipped = [r.name for r in scored if r not in same]
    note = f" &middot; {len(items)} rows" + (f"; not shown (scored on other data): {escape(', '.join(skipped))}"
                                            if skipped else "")
    return gallery(items, dataset, note, COMPARE_FILTERS)


def _tokens(row: Row, answers: list[Any]) -> str:
    if row.error is not None or any(a is None for a in answers):
        return "error failures"
    right = [a.correct for a in answers]
    return " ".join((["correct"] if all(right) else ["failures"]) + (["differ"] if len(set(right)) > 1 else []))


def render(runs: list[Run]) -> str:
    thumbnails = Thumbnails()
    chart_list = charts(runs)
    body = (section("runs", "Runs", _runs_table(runs))
            + section("curves", "Curves", '<div class="charts">' + "".join(
                f'<div class="chart" data-chart="{i}"></div>' for i in range(len(chart_list))) + "</div>")
            + section("recipe", "Recipe keys that differ", _recipe_diff(runs))
            + section("scores", "Scores", _metrics(runs))
            + section("predictions", "Predictions side by side", _predictions(runs, thumbnails)))
    nav = [("runs", "Runs"), ("curves", "Curves"), ("recipe", "Recipe"), ("scores", "Scores"),
           ("predictions", "Predictions")]
    return document(f"Comparing {len(runs)} runs", escape(" vs ".join(r.name for r in runs)), nav, body,
                    {"charts": chart_list})
