"""Reports of real tiny runs on both routes: train.py writes one when the training ends (and TensorBoard's
event files appear when the recipe reports to it), and two real runs compare on one page."""
from __future__ import annotations

import pytest

from browser_checks import check_page, filter_by
from conftest import run_cli
from internvl_kit.report.browser import open_report

pytestmark = pytest.mark.e2e


def test_training_writes_the_report_and_tensorboard_logs(overfit_run):
    run = overfit_run["run"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    (events,) = (run / "runs").rglob("events.out.tfevents.*")
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    losses = [e.value for e in acc.Scalars("train/loss")]
    assert len(losses) == 7 and losses[-1] < losses[0]                # step 1, then every 10th of 60
    with open_report(run / "report.html") as page:
        facts = check_page(page, f"report-train-{overfit_run['variant'].name}.png")
        assert [c["title"] for c in facts["charts"]][:2] == ["Loss", "Learning rate"]
        assert page.evaluate("() => document.querySelector('.status-done').textContent") == "finished: 60 steps"
        changed = page.evaluate("() => Array.from(document.querySelectorAll('#recipe tbody tr td:first-child'))"
                                ".map(c => c.querySelector('code').textContent)")
        assert {"num_train_epochs", "internvl.max_num", "report_to", "max_length"} <= set(changed)


@pytest.mark.parametrize("variant", ["hf", "internvl3_5"], indirect=True)     # one run per route
def test_two_real_runs_side_by_side(overfit_run, variant, tmp_path):
    second = tmp_path / "out"
    out = run_cli("train.py", "recipes/tiny-demo.yaml", *variant.overrides, f"dataset=[{overfit_run['data']}]",
                  "~val_dataset", "max_steps=10", "save_steps=10", "logging_steps=2", "lora_rank=16",
                  "internvl.max_num=2", "max_length=256", f"output_dir={second}")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    (run_b,) = second.iterdir()
    rows = tmp_path / "colours.jsonl"
    rows.write_text(overfit_run["data"].read_text())
    for run in (overfit_run["run"], run_b):
        inf = run_cli("infer.py", str(run), "--dataset", str(rows), "--max-new-tokens", "6",
                      "-o", str(tmp_path / f"{run.name}.jsonl"))
        assert inf.returncode == 0, inf.stdout[-2000:] + inf.stderr[-3000:]
    page_path = tmp_path / "compare.html"
    out = run_cli("-m", "internvl_kit.report", str(overfit_run["run"]), str(run_b), "-o", str(page_path))
    assert out.returncode == 0, out.stderr
    with open_report(page_path) as page:
        facts = check_page(page, f"compare-real-{variant.name}.png")
        loss = next(c for c in facts["charts"] if c["title"] == "loss (smoothed)")
        assert loss["curves"] == 2
        diff = page.evaluate("() => Object.fromEntries(Array.from(document.querySelectorAll('#recipe tbody tr'))"
                             ".map(r => [r.cells[0].textContent, Array.from(r.cells).slice(1).map(c => c.textContent)]))")
        assert diff["lora_rank"] == ["8", "16"] and diff["max_steps"] == ["(unset)", "10"]
        assert facts["entries"] == 4 and len(facts["images"]) == 4
        who = page.evaluate("() => Array.from(document.querySelectorAll('.gallery .entry:first-child .who'))"
                            ".map(w => w.textContent)")
        assert who == ["reference", overfit_run["run"].name, run_b.name]
        assert filter_by(page, "all") == 4
