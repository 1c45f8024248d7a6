"""The report's parts on generated runs: curves from swift's log (resumes, half lines, thinning), recipe
differences, safe formulas, the order of the gallery, the token histogram, and the CLI's refusals."""
from __future__ import annotations

import json
from collections import Counter

from conftest import run_cli
from internvl_kit.report import diffs, formulas, predictions, run_page, runlog
from internvl_kit.train.data_plan import _histogram
from synthetic_run import make_run


def test_a_resumed_run_keeps_the_second_attempts_rows_and_marks_the_resume(tmp_path):
    run = make_run(tmp_path, steps=120, resume_at=60)
    with open(run / "logging.jsonl", "a") as f:
        f.write('{"loss": 1.0, "global_step/max')                   # a run still writing its next line
    log = runlog.read(run)
    steps = [s for s, _ in log.series["loss"]]
    assert steps == sorted(set(steps)) and steps[-1] == 120           # one value per step, in order
    rows = [json.loads(x) for x in (run / "logging.jsonl").read_text().splitlines()[:-1]]
    second = [r for r in rows if r.get("global_step/max_steps") == "70/120" and "loss" in r][-1]
    assert dict(log.series["loss"])[70] == second["loss"]             # the resumed attempt's value, not the first
    assert log.resumes == [60] and log.checkpoints == [30, 60, 90, 120] and log.skipped_lines == 1 and log.done
    titles = [c["title"] for c in log.charts()]
    assert titles == ["Loss", "Learning rate", "Gradient norm", "Token accuracy", "Throughput", "Memory"]


def test_thinning_keeps_the_extremes_and_smoothing_starts_at_the_first_value():
    points = [(i, float(i % 97)) for i in range(10_000)]
    points[4321] = (4321, 1e6)                                          # one spike
    thin = runlog.thin(points)
    assert len(thin) <= runlog.MAX_POINTS and [4321, 1e6] in thin and min(v for _, v in thin) == 0
    assert [s for s, _ in thin] == sorted(s for s, _ in thin)
    assert runlog.smooth([(1, 5.0), (2, 1.0)])[0] == (1, 5.0)          # debiased: no pull towards 0


def test_other_logged_keys_get_their_own_charts(tmp_path):
    (tmp_path / "logging.jsonl").write_text("".join(json.dumps(
        {"loss": 1.0 / s, "rewards/chosen": 0.1 * s, "rewards/rejected": -0.1 * s, "nll_loss": 2.0,
         "global_step/max_steps": f"{s}/3"}) + "\n" for s in (1, 2, 3)))
    charts = {c["title"]: [line["name"] for line in c["lines"]] for c in runlog.read(tmp_path).charts()}
    assert charts["rewards"] == ["rewards/chosen", "rewards/rejected"] and charts["nll_loss"] == ["nll_loss"]


def test_recipe_differences():
    recipe = {"lora_rank": 16, "internvl": {"max_num": 6}, "dataset": ["a"], "output_dir": "x"}
    base = {"lora_rank": 8, "internvl": {"max_num": 12, "input_size": 448}}
    assert diffs.against_base(recipe, base) == [
        ("dataset", diffs.MISSING, ["a"]), ("internvl.input_size", 448, diffs.MISSING),
        ("internvl.max_num", 12, 6), ("lora_rank", 8, 16), ("output_dir", diffs.MISSING, "x")]
    assert diffs.between([recipe, dict(recipe, lora_rank=8, output_dir="y")]) == [("lora_rank", [16, 8])]


def test_formulas_are_mathml_and_model_output_cannot_inject_markup():
    assert formulas.to_mathml(r"\frac{a}{b}").startswith("<math") and "<mfrac>" in formulas.to_mathml(r"\frac{a}{b}")
    assert formulas.to_mathml(r"\frac{a}{") is None                     # does not parse: shown as source
    for hostile in (r"\text{<img src=x onerror=alert(1)/>}", r"\text{<b>}", r"\href{http://x}{y}"):
        markup = formulas.to_mathml(hostile)
        assert markup is None or ("<img" not in markup and "onerror" not in markup and "href" not in markup)
    assert formulas.looks_like_latex(r"x^{2}") and not formulas.looks_like_latex("a red circle")


def test_the_gallery_puts_failures_first(tmp_path):
    run = make_run(tmp_path, predictions=22)
    rows = predictions.latest(run).rows
    order = [r.status for r in rows]
    assert order == sorted(order, key=["error", "wrong", "correct"].index) and {"error", "wrong", "correct"} <= set(order)
    wrong = [r.answers["tuned"].cer for r in rows if r.status == "wrong"]
    assert wrong == sorted(wrong, reverse=True)                          # the worst answers first
    assert predictions.latest(run).models == ["tuned", "base"]


def test_token_histogram_counts_every_training_row():
    totals = {f"k{i}": 100 + i * 7 for i in range(50)} | {"broken": None}
    counts = Counter({k: 2 for k in totals})
    hist = _histogram(counts, totals)
    assert sum(hist["counts"]) == 100 and len(hist["edges"]) == len(hist["counts"]) + 1 <= 25
    assert hist["edges"][0] == 100 and hist["edges"][-1] > 100 + 49 * 7


def test_cli_builds_from_a_checkpoint_and_refuses_what_is_not_a_run(tmp_path):
    run = make_run(tmp_path)
    out = run_cli("-m", "internvl_kit.report", str(run / "checkpoint-120"))
    assert out.returncode == 0, out.stderr
    assert f"[ok]    report: {run / 'report.html'}" in out.stdout
    html = (run / "report.html").read_text()
    assert html.count('class="entry ') == 16 and "<math" in html and "resumed from 60" in html
    out = run_cli("-m", "internvl_kit.report", str(tmp_path / "nothing"))
    assert out.returncode == 2 and "not a run directory" in out.stderr and "Traceback" not in out.stderr


def test_status_of_an_unfinished_run(tmp_path):
    run = make_run(tmp_path, steps=120, resume_at=None)
    rows = [json.loads(x) for x in (run / "logging.jsonl").read_text().splitlines()]
    kept = [r for r in rows if int(r.get("global_step/max_steps", "999/0").split("/")[0]) <= 50]
    (run / "logging.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))   # no summary: still going
    assert run_page.read(run).status == ("running", "in progress: 50 of 120 steps")
    assert run_page.read(run, ended=True).status == ("stopped", "not finished: 50 of 120 steps")   # train.py's word
    assert run_page.read(tmp_path / "empty").status[0] == "stopped"


def test_thumbnails_show_the_stored_pixels_as_swift_does(tmp_path):
    """swift's load_image ignores EXIF orientation: a thumbnail turned upright would not be what the model saw."""
    import base64
    import io

    from PIL import Image
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6                                  # "rotate 90 CW to display"
    Image.new("RGB", (200, 100), "red").save(path, exif=exif)
    from swift.template.vision_utils import load_image
    assert load_image(str(path)).size == (200, 100)   # the oracle: stored size, not the displayed 100x200
    uri = predictions.Thumbnails()(str(path))
    thumb = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert thumb.width > thumb.height
