"""data_tools stats (numbers and the histogram) and split (deterministic, shared images kept together)."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from conftest import run_cli


def test_stats_on_the_demo_data(demo_model, demo_data, tmp_path):
    png = tmp_path / "h.png"
    out = run_cli("-m", "data_tools", "stats", str(demo_data["train"]), "--recipe", "recipes/tiny-demo.yaml",
                  "--max-length", "50", "--json", "--plot", str(png))
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout.splitlines()[0])
    assert stats["samples"] == stats["usable"] == 48
    assert stats["images_per_sample"] == {"1": 48} and stats["turns"] == {"1": 48}
    # demo sizes cycle 64x64, 112x56, 56x112, 96x72 -> 1, 3, 3, 7 tiles with max_num 6 (56-px tiles)
    assert stats["tiles_per_image"] == {"1": 12, "3": 24, "7": 12}
    assert stats["tokens"]["image"]["max"] == 7 * 4 and stats["tokens"]["total"]["max"] == 61
    assert stats["over_max_length"] == 12
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 400


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_split_is_deterministic_and_keeps_shared_images_together(tmp_path):
    rows = []
    for i in range(100):
        imgs = [f"/img/{i // 4}.png"] if i % 10 else []            # groups of 4 rows share an image
        rows.append({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}],
                     "images": imgs})
    src = tmp_path / "all.jsonl"
    _write(src, rows)
    for d in ("a", "b"):
        out = run_cli("-m", "data_tools", "split", str(src), "--val", "0.2", "--seed", "7", "-o", str(tmp_path / d))
        assert out.returncode == 0, out.stderr
    a_train, a_val = ((tmp_path / "a" / f).read_text() for f in ("train.jsonl", "val.jsonl"))
    assert a_val == (tmp_path / "b" / "val.jsonl").read_text()          # same seed, same split
    val = [json.loads(x) for x in a_val.splitlines()]
    train = [json.loads(x) for x in a_train.splitlines()]
    assert len(val) + len(train) == 100 and 16 <= len(val) <= 20
    val_imgs = {i for r in val for i in r["images"]}
    assert not val_imgs & {i for r in train for i in r["images"]}       # no image on both sides
    other = run_cli("-m", "data_tools", "split", str(src), "--val", "20", "--seed", "8", "-o", str(tmp_path / "c"))
    assert other.returncode == 0 and (tmp_path / "c" / "val.jsonl").read_text() != a_val


def test_split_bad_val_is_usage_error(tmp_path):
    src = tmp_path / "x.jsonl"
    _write(src, [{"messages": []}] * 3)
    assert run_cli("-m", "data_tools", "split", str(src), "--val", "5", "-o", str(tmp_path)).returncode == 2
    assert run_cli("-m", "data_tools", "split", str(src), "--val", "lots", "-o", str(tmp_path)).returncode == 2
