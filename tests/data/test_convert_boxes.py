"""convert --from coco / refcoco / odvg: detection and referring data become grounding rows that validate
accepts, and drawn as swift reads them, every box is back at its own pixels."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from conftest import run_cli
from data_tools.grounding import REFERENCE

# (file, size, [(category, [x, y, w, h])]): boxes apart from each other, so every edge can be looked at
IMAGES = [("street.png", (200, 120), [(1, [10, 30, 40, 50]), (2, [120, 20, 50, 70])]),
          ("room.png", (90, 160), [(2, [5, 10, 30, 40]), (2, [40, 90, 40, 50]), (1, [50, 10, 30, 30])]),
          ("empty.png", (64, 64), [])]
CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 2, "name": "red car"}]


def _coco(root: Path) -> Path:
    images, anns = [], []
    for i, (name, size, objects) in enumerate(IMAGES):
        Image.new("RGB", size, "white").save(root / name)
        images.append({"id": 100 + i, "file_name": name, "width": size[0], "height": size[1]})
        for cat, box in objects:
            anns.append({"id": len(anns) + 1, "image_id": 100 + i, "category_id": cat, "bbox": box, "iscrowd": 0,
                         "area": box[2] * box[3], "segmentation": [[box[0], box[1], box[0] + box[2], box[1]]]})
    anns.append({"id": 99, "image_id": 100, "category_id": 1, "bbox": [0, 0, 5, 5], "iscrowd": 1})
    path = root / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": CATEGORIES}))
    return path


def _edges_drawn(root: Path, out: Path, rows: list[dict]) -> int:
    """Draw the converted rows (stats --draw) and look at the middle of each box's left and right edges."""
    draw = run_cli("-m", "data_tools", "stats", str(out), "--draw", "50", "--draw-dir", str(root / "drawn"))
    assert draw.returncode == 0, draw.stdout + draw.stderr
    seen = 0
    for line, row in enumerate(rows, 1):
        im = Image.open(root / "drawn" / f"{out.stem}-{line}-0.png").convert("RGB")
        width, height = Image.open(row["images"][0]).size
        scale = max(1.0, 320 / min(width, height))
        for x1, y1, x2, y2 in row["objects"]["bbox"]:
            mid = round((y1 + y2) / 2 * scale)
            assert im.getpixel((round(x1 * scale) + 1, mid)) == REFERENCE, (line, x1)
            assert im.getpixel((round(x2 * scale) - 1, mid)) == REFERENCE, (line, x2)
            seen += 1
    return seen


def test_coco_per_image_and_per_category(tmp_path):
    src = _coco(tmp_path)
    out = tmp_path / "coco.jsonl"
    conv = run_cli("-m", "data_tools", "convert", str(src), "--from", "coco", "-o", str(out))
    assert conv.returncode == 0, conv.stdout + conv.stderr
    assert "converted 2 row(s)" in conv.stdout and "skipped 1" in conv.stdout
    assert "an image without objects" in conv.stdout
    assert "dropped field 'annotations[] with iscrowd 1' from 1 row(s)" in conv.stdout
    assert "dropped field 'annotations[].segmentation' from 2 row(s)" in conv.stdout
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[0]["objects"] == {"ref": ["cat", "red car"], "bbox": [[10, 30, 50, 80], [120, 20, 170, 90]]}
    assert rows[0]["messages"][1]["content"] == "<ref-object><bbox>\n<ref-object><bbox>"
    check = run_cli("-m", "data_tools", "validate", str(out), "--recipe", "recipes/tiny-demo.yaml")
    assert check.returncode == 0, check.stdout + check.stderr
    assert _edges_drawn(tmp_path, out, rows) == 5
    per = tmp_path / "per-category.jsonl"
    conv = run_cli("-m", "data_tools", "convert", str(src), "--from", "coco", "--per", "category", "-o", str(per))
    assert conv.returncode == 0 and "converted 4 row(s)" in conv.stdout, conv.stdout + conv.stderr
    rows = [json.loads(x) for x in per.read_text().splitlines()]
    cars = next(r for r in rows if r["objects"]["ref"] == ["red car"] and len(r["objects"]["bbox"]) == 2)
    assert cars["messages"][0]["content"] == "<image>Find every <ref-object>." and \
        cars["messages"][1]["content"] == "<bbox>\n<bbox>"
    assert run_cli("-m", "data_tools", "validate", str(per), "--no-tokens").returncode == 0


def test_refcoco_refs_and_odvg(tmp_path):
    instances = _coco(tmp_path)
    refs = [{"ref_id": 1, "ann_id": 2, "image_id": 100, "split": "val",
             "sentences": [{"sent": "the car on the right"}, {"raw": "Red car, right."}]},
            {"ref_id": 2, "ann_id": 5, "image_id": 101, "split": "train", "sentences": [{"sent": "small cat"}]},
            {"ref_id": 3, "ann_id": 404, "image_id": 101, "split": "val", "sentences": [{"sent": "nothing"}]}]
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    out = tmp_path / "refcoco.jsonl"
    conv = run_cli("-m", "data_tools", "convert", str(tmp_path / "refs.json"), "--from", "refcoco", "--instances",
                   str(instances), "--split", "val", "-o", str(out))
    assert conv.returncode == 0, conv.stdout + conv.stderr
    assert "converted 2 row(s)" in conv.stdout and "ann_id 404 / image_id 101 not in instances.json" in conv.stdout
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["objects"]["ref"] for r in rows] == [["the car on the right"], ["Red car, right."]]
    assert rows[0]["messages"][0]["content"] == "<image>Where is <ref-object>?"
    assert run_cli("-m", "data_tools", "validate", str(out), "--recipe", "recipes/tiny-demo.yaml").returncode == 0
    assert _edges_drawn(tmp_path, out, rows) == 2
    odvg = tmp_path / "odvg.jsonl"
    odvg.write_text(json.dumps({"filename": "street.png", "height": 120, "width": 200,
                                "detection": {"instances": [{"bbox": [10, 30, 50, 80], "label": 0, "category": "cat"}]}})
                    + "\n" + json.dumps({"filename": "room.png", "height": 160, "width": 90, "grounding": {
                        "caption": "a cat by a car", "regions": [{"bbox": [50, 10, 80, 40], "phrase": "a cat"}]}})
                    + "\n" + json.dumps({"filename": "gone.png", "detection": {"instances": []}}) + "\n")
    out = tmp_path / "from-odvg.jsonl"
    conv = run_cli("-m", "data_tools", "convert", str(odvg), "--from", "odvg", "-o", str(out))
    assert conv.returncode == 0 and "converted 2 row(s)" in conv.stdout and "gone.png" in conv.stdout, conv.stdout
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[1]["messages"][0]["content"] == "<image>Locate the phrases of this caption: a cat by a car"
    assert run_cli("-m", "data_tools", "validate", str(out), "--no-tokens").returncode == 0
    assert (run_cli("-m", "data_tools", "convert", str(tmp_path / "refs.json"), "--from", "refcoco", "-o",
                    str(tmp_path / "x.jsonl")).returncode == 2)                          # --instances is needed
