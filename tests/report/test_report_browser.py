"""Reports of generated runs in headless Chromium with every non-file:// request blocked: curves drawn,
images decoded, formulas rendered, filters working, no console errors, and model output that tries to
break out of the page stays text."""
from __future__ import annotations

import json

import pytest

from browser_checks import check_page, filter_by, shown
from internvl_kit.report import build, predictions
from internvl_kit.report.browser import open_report
from synthetic_run import make_run


def test_run_report_in_chromium(tmp_path):
    run = make_run(tmp_path, steps=400, predictions=22, resume_at=200)
    out = build.write_run(run)
    rows = predictions.latest(run).rows
    with open_report(out) as page:
        facts = check_page(page, "report-synthetic.png")
        titles = [c["title"] for c in facts["charts"]]
        assert titles == ["Loss", "Learning rate", "Gradient norm", "Token accuracy", "Throughput", "Memory",
                          "Token length of the training rows"]
        assert facts["charts"][0]["curves"] == 3                        # raw, smoothed, eval
        assert len(facts["images"]) == 22 and facts["entries"] == 22
        latex = [r for r in rows if r.latex]
        assert len(facts["formulas"]) >= 2 * len([r for r in latex if r.error is None])   # reference + answers
        assert page.evaluate("() => document.querySelectorAll('.mark text')[0].textContent") == "ckpt 100"
        assert page.evaluate("() => Array.from(document.querySelectorAll('.mark text')).some("
                             "t => t.textContent === 'resumed from 200')")
        first = page.evaluate("() => document.querySelector('.gallery .entry').className")
        assert "s-error" in first                                        # failures first
        n = {s: sum(r.status == s for r in rows) for s in ("error", "wrong", "correct")}
        assert filter_by(page, "failures") == n["error"] + n["wrong"]
        assert filter_by(page, "correct") == n["correct"]
        assert filter_by(page, "error") == n["error"]
        better = sum(1 for r in rows if r.error is None and r.answers["tuned"].correct and not r.answers["base"].correct)
        assert filter_by(page, "better") == better
        assert filter_by(page, "all", r"\sqrt") == sum(r"\sqrt" in r.reference for r in rows)
        assert page.evaluate("() => document.getElementById('filter-count').textContent").endswith("of 22 rows")
        assert filter_by(page, "all", "") == 22 == shown(page)
        page.page.hover(".chart svg")                                    # the readout under the cursor
        assert "@" in page.evaluate("() => document.querySelector('.chart .tip').textContent")
        assert page.console_errors == []


def test_comparison_in_chromium(tmp_path):
    a = make_run(tmp_path, lora_rank=8, seed=1, predictions=12)
    b = make_run(tmp_path, lora_rank=16, seed=2, predictions=12, resume_at=None)
    metrics = json.loads((b / "checkpoint-120/infer/held-out.metrics.json").read_text())
    metrics["metrics"]["tuned"]["cer"] = 0.05                          # b's CER is the best
    (b / "checkpoint-120/infer/held-out.metrics.json").write_text(json.dumps(metrics))
    out = build.write_compare([a, b])
    assert out == tmp_path / f"compare-{a.name}-vs-{b.name}.html"
    with open_report(out) as page:
        facts = check_page(page, "compare-synthetic.png")
        assert all(c["curves"] == 2 for c in facts["charts"])          # both runs on every chart
        diff = page.evaluate("() => Array.from(document.querySelectorAll('#recipe tbody tr')).map("
                             "r => Array.from(r.cells).map(c => c.textContent))")
        assert ["lora_rank", "8", "16"] in diff and not any(r[0] == "output_dir" for r in diff)
        best = page.evaluate("() => Array.from(document.querySelectorAll('#scores td.best')).map("
                             "c => [c.parentElement.cells[0].textContent, c.cellIndex])")
        assert ["CER", 2] in best                                       # column 2 is run b
        assert facts["entries"] == 12
        answers = page.evaluate("() => Array.from(document.querySelector('.gallery .entry').querySelectorAll("
                                "'.answers .who')).map(w => w.textContent)")
        assert answers == ["reference", a.name, b.name]
        assert filter_by(page, "differ") + filter_by(page, "correct") <= 12


@pytest.mark.parametrize("hostile", ["</script><script>document.title='owned'</script>",
                                     '<img src="http://198.51.100.1/x.png" onerror="document.title=\'owned\'">',
                                     r"\text{<img src=http://198.51.100.1/y.png>} \frac{1}{2"])
def test_model_output_stays_text(tmp_path, hostile):
    run = make_run(tmp_path, predictions=4)
    preds = run / "checkpoint-120/infer/held-out.jsonl"
    rows = [json.loads(x) for x in preds.read_text().splitlines()]
    rows[0]["prediction"] = hostile
    rows[0].pop("error", None)
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with open_report(build.write_run(run)) as page:
        check_page(page, "report-hostile.png")
        assert page.evaluate("() => document.title").startswith("Run ")
        assert hostile in page.evaluate("() => document.querySelector('.gallery').textContent")


def test_the_network_gate_sees_a_page_that_reaches_out(tmp_path):
    """The control for every `blocked == []` above: a page that fetches from the network is caught."""
    page_file = tmp_path / "leaky.html"
    page_file.write_text('<html><body><img src="http://198.51.100.1/x.png"><script>fetch("https://198.51.100.2/y")'
                         '.catch(() => {})</script></body></html>')
    with open_report(page_file) as page:
        page.page.wait_for_load_state("networkidle")
        assert sorted(page.blocked) == ["http://198.51.100.1/x.png", "https://198.51.100.2/y"]
