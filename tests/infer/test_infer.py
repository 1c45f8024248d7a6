"""infer.py on both routes: better after training than before, the run's knobs re-applied, clear errors, chat."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from conftest import run_cli
from browser_checks import check_page, filter_by
from internvl_kit.report.browser import open_report
from data_tools.tokens import Counter, TilingConfig

pytestmark = pytest.mark.e2e


def _mixed_dataset(overfit_run, tmp_path: Path) -> tuple[Path, Path, list[dict]]:
    """The four training rows with three that cannot run between them: an over-long question (~400
    tokens, max_length is 256), an image that does not open, a line that is not JSON."""
    good = [json.loads(x) for x in overfit_run["data"].read_text().splitlines()]
    not_image = tmp_path / "x.png"
    not_image.write_text("not an image")
    long_row = {"messages": [{"role": "user", "content": "<image>" + "what colour " * 200},
                             {"role": "assistant", "content": "red"}], "images": good[0]["images"]}
    bad_image = {"messages": good[1]["messages"], "images": [str(not_image)]}
    data = tmp_path / "mixed.jsonl"
    lines = [json.dumps(r) for r in (good[0], long_row, good[1], bad_image, good[2])] + ["not json", json.dumps(good[3])]
    data.write_text("\n".join(lines) + "\n")
    return data, not_image, good


def test_compare_base_shows_training_helped_and_rows_that_cannot_run_are_skipped(overfit_run, tmp_path):
    data, not_image, good = _mixed_dataset(overfit_run, tmp_path)
    pred = tmp_path / "pred.jsonl"
    out = run_cli("infer.py", str(overfit_run["run"]), "--dataset", str(data), "--compare-base",
                  "--max-new-tokens", "8", "-o", str(pred))
    assert out.returncode == 3, out.stdout[-2000:] + out.stderr[-3000:]       # some rows could not run
    assert "Traceback" not in out.stderr
    assert f"{data}:2: MaxLengthError: Current length of row" in out.stderr
    assert f"{data}:4: image '{not_image}' does not open" in out.stderr
    assert f"{data}:6: invalid JSON (Expecting value at column 1)" in out.stderr and "3 of 7 row(s) could not run" in out.stderr
    report = json.loads(pred.with_suffix(".metrics.json").read_text())
    kept = overfit_run["checkpoint"] / "infer" / "mixed.metrics.json"      # -o elsewhere: the card still finds it
    assert json.loads(kept.read_text()) == report
    base, tuned = report["metrics"]["base"], report["metrics"]["tuned"]
    assert base["samples"] == tuned["samples"] == 4 and [f["line"] for f in report["failed_rows"]] == [2, 4, 6]
    assert tuned["exact_match"] > base["exact_match"]
    assert tuned["exact_match"] >= 0.75 and tuned["cer"] < base["cer"]
    rows = [json.loads(x) for x in pred.read_text().splitlines()]
    assert [r["line"] for r in rows] == list(range(1, 8))
    ran = [r for r in rows if "error" not in r]
    assert [r["line"] for r in ran] == [1, 3, 5, 7]
    assert all({"prediction", "prediction_base", "prompt_tokens"} <= set(r) for r in ran)
    assert "exact_match" in out.stdout and "diff" in out.stdout and "chrf" in out.stdout
    knobs = {"MAX_NUM": "2"} if overfit_run["variant"].is_hf else {"MAX_NUM": "2", "INPUT_SIZE": "56"}
    assert report["settings"]["env"] == knobs and report["settings"]["max_length"] == 256
    # the run's report now shows these predictions, the rows that could not run first
    page = overfit_run["run"] / "report.html"
    assert f"[ok]    report:      {page}" in out.stdout
    with open_report(page) as browser:
        facts = check_page(browser, f"report-infer-{overfit_run['variant'].name}.png")
        assert facts["entries"] == 7 and len(facts["images"]) == 5       # x.png and the non-JSON line have none
        assert browser.evaluate("() => Array.from(document.querySelectorAll('.gallery .entry')).slice(0, 3).map("
                                "e => e.querySelector('.meta').textContent)") == ["line 2", "line 4", "line 6"]
        assert filter_by(browser, "error") == 3 and filter_by(browser, "better") >= 1
        assert browser.evaluate("() => document.querySelector('#scores td.best') !== null")   # tuned beats base


def test_run_knobs_are_reapplied(overfit_run, tmp_path):
    """A 4:1 image is 4+1 tiles with the default limit (12) but 2+1 with the run's max_num=2."""
    variant = overfit_run["variant"]
    wide = tmp_path / "wide.png"
    Image.new("RGB", (224, 56), "red").save(wide)
    data = tmp_path / "wide.jsonl"
    messages = [{"role": "user", "content": "<image>Colour?"}, {"role": "assistant", "content": "red"}]
    data.write_text(json.dumps({"messages": messages, "images": [str(wide)]}) + "\n")
    pred = tmp_path / "p.jsonl"
    out = run_cli("infer.py", str(overfit_run["checkpoint"]), "--dataset", str(data), "-o", str(pred),
                  "--max-new-tokens", "4")
    assert out.returncode == 0, out.stderr[-3000:]
    (row,) = [json.loads(x) for x in pred.read_text().splitlines()]
    input_size = None if variant.is_hf else 56
    tiling = TilingConfig.for_model(variant.path, variant.template, None, input_size)
    counter = Counter(variant.template, tiling, variant.path)
    prompt = messages[:1]
    with_run_knobs = counter.total(prompt + [{"role": "assistant", "content": ""}], [(224, 56)], max_num=2)
    with_defaults = counter.total(prompt + [{"role": "assistant", "content": ""}], [(224, 56)])
    assert with_defaults - with_run_knobs == 2 * 4                      # two tiles of 4 tokens apart
    # prompt_tokens counts the generation prompt: the template's training suffix is not in it
    assert row["prompt_tokens"] == with_run_knobs - counter.count_texts(["<|im_end|>\n"])


def test_max_length_is_reapplied_to_swifts_template(overfit_run):
    from internvl_kit.infer.checkpoint import load
    from internvl_kit.infer.predict import Predictor
    info = load(overfit_run["checkpoint"])
    predictor = Predictor(info, model=info.base_model, adapter=str(info.path), max_new_tokens=4)
    assert predictor.engine.template.max_length == 256
    assert os.environ["MAX_NUM"] == "2"
    if not overfit_run["variant"].is_hf:               # swift's chat templates read the tiling at build time
        assert (predictor.engine.template.max_num, predictor.engine.template.input_size) == (2, 56)


def _fake_checkpoint(tmp_path: Path, record: dict | None, args: dict | None = None) -> Path:
    ckpt = tmp_path / "run" / "checkpoint-5"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text(json.dumps({"target_modules": ["q_proj"], "r": 8}))
    if record is not None:
        (ckpt / "run.json").write_text(json.dumps(record))
    if args is not None:
        (ckpt / "args.json").write_text(json.dumps(args))
    return ckpt


def test_chat_template_knobs_reach_the_environment(tmp_path, monkeypatch):
    record = {"model_type": "internvl_chat", "template": "internvl3_5", "internvl": {"max_num": 4, "video_segments": 6},
              "recipe": {"model": "OpenGVLab/InternVL3_5-8B", "max_length": 2048, "freeze_vit": False}}
    ckpt = _fake_checkpoint(tmp_path, record)
    out = run_cli("infer.py", str(ckpt), "--dry-run", "--backend", "vllm")
    assert out.returncode == 0, out.stderr
    assert "# env:        MAX_NUM=4 VIDEO_SEGMENTS=6" in out.stdout
    assert "max_length 2048" in out.stdout and "OpenGVLab/InternVL3_5-8B" in out.stdout
    assert "vllm applies LoRA to the language model only; merge first" in out.stderr
    from internvl_kit.infer.checkpoint import load
    from internvl_kit.infer.predict import apply_settings
    for var in ("MAX_NUM", "VIDEO_SEGMENTS"):
        monkeypatch.delenv(var, raising=False)
    apply_settings(load(ckpt))
    assert os.environ["MAX_NUM"] == "4" and os.environ["VIDEO_SEGMENTS"] == "6"


def test_bad_inputs_fail_clearly(tmp_path, overfit_run):
    cases = []
    out = run_cli("infer.py", str(tmp_path / "nope"), "--prompt", "hi")
    cases.append((out, "no such checkpoint directory"))
    out = run_cli("infer.py", str(_fake_checkpoint(tmp_path / "a", None)), "--prompt", "hi")
    cases.append((out, "no run.json or args.json next to the weights"))
    not_image = tmp_path / "x.png"
    not_image.write_text("not an image")
    out = run_cli("infer.py", str(overfit_run["checkpoint"]), "--image", str(not_image), "--prompt", "hi")
    cases.append((out, f"image '{not_image}' does not open"))
    long_prompt = "what colour " * 200                     # ~400 tokens, max_length is 256
    out = run_cli("infer.py", str(overfit_run["checkpoint"]), "--prompt", long_prompt)
    cases.append((out, "--prompt cannot run: MaxLengthError: Current length of row"))
    for out, message in cases:
        assert out.returncode == 1 and message in out.stderr, out.stderr
        assert "Traceback" not in out.stderr


def test_single_image_and_interactive_chat(overfit_run):
    green = overfit_run["root"] / "green.png"
    out = run_cli("infer.py", str(overfit_run["checkpoint"]), "--image", str(green), "--prompt", "Colour?",
                  "--max-new-tokens", "4")
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "green"
    import subprocess
    import sys
    from conftest import ROOT
    chat = subprocess.run([sys.executable, "infer.py", str(overfit_run["checkpoint"]), "--interactive",
                           "--max-new-tokens", "4"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          input=f"/image {overfit_run['root'] / 'blue.png'}\nColour?\n/image /no/such.png\n/quit\n")
    assert chat.returncode == 0, chat.stderr[-2000:]
    assert "assistant: blue" in chat.stdout and "error: /image: image '/no/such.png' does not open" in chat.stdout

