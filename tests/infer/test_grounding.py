"""Grounding on both routes: a tiny model trained on generated boxes (a red square in one of four places)
answers with boxes; infer.py scores them by IoU (rising from base to tuned), draws them at the right pixels,
and the run report overlays them on the images."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import run_cli

pytestmark = pytest.mark.e2e

PLACES, SIDE, CANVAS = ((4, 4), (30, 6), (6, 30), (30, 30)), 20, 56       # 56 px: one tile of the tiny models
SQUARE, BACKGROUND = (220, 30, 30), (235, 235, 235)


def squares(root: Path) -> Path:
    rows = []
    for i, (x, y) in enumerate(PLACES):
        im = Image.new("RGB", (CANVAS, CANVAS), BACKGROUND)
        im.paste(SQUARE, (x, y, x + SIDE, y + SIDE))
        path = root / f"square{i}.png"
        im.save(path)
        rows.append({"messages": [{"role": "user", "content": "<image>Where is <ref-object>?"},
                                  {"role": "assistant", "content": "<bbox>"}],
                     "images": [str(path)], "objects": {"ref": ["the red square"], "bbox": [[x, y, x + SIDE, y + SIDE]]}})
    data = root / "boxes.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


@pytest.mark.parametrize("variant", ["hf", "internvl3_5"], indirect=True)     # one run per route
def test_a_box_is_learned_scored_and_drawn(variant, tmp_path):
    data = squares(tmp_path)
    check = run_cli("-m", "data_tools", "validate", str(data), "--recipe", "recipes/tiny-demo.yaml")
    assert check.returncode == 0, check.stdout + check.stderr
    out = run_cli("train.py", "recipes/tiny-demo.yaml", *variant.overrides, f"dataset=[{data}]", "~val_dataset",
                  "num_train_epochs=60", "save_steps=60", "eval_steps=1000", "logging_steps=10", "internvl.max_num=2",
                  "max_length=256", f"output_dir={tmp_path / 'out'}")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    (run,) = (tmp_path / "out").iterdir()
    drawn = tmp_path / "drawn"
    inf = run_cli("infer.py", str(run), "--dataset", str(data), "--compare-base", "--max-new-tokens", "24",
                  "--draw", str(drawn))
    assert inf.returncode == 0, inf.stdout[-2000:] + inf.stderr[-3000:]
    metrics = json.loads((run / "checkpoint-60" / "infer" / "boxes.metrics.json").read_text())["metrics"]
    base, tuned = metrics["base"], metrics["tuned"]
    assert tuned["referring_rows"] == base["referring_rows"] == 4
    assert tuned["mean_iou"] > base["mean_iou"] and tuned["acc_at_0.5"] >= 0.25, metrics
    assert "mean_iou" in inf.stdout and "acc_at_0.5" in inf.stdout
    # the reference box comes back at its own pixels: drawn at 320/56 scale, its edges are green
    from data_tools.grounding import REFERENCE
    scale = 320 / CANVAS
    for i, (x, y) in enumerate(PLACES):
        im = Image.open(drawn / f"line-{i + 1}.png").convert("RGB")
        assert im.size == (320, 320)
        mid = round((y + SIDE / 2) * scale)
        assert im.getpixel((round(x * scale) + 1, mid)) == REFERENCE       # the left edge, inside the stroke
        assert im.getpixel((round((x + SIDE) * scale) - 1, mid)) == REFERENCE
    page = (run / "report.html").read_text()
    assert page.count('class="box-reference"') == 4 and "mean IoU" in page
