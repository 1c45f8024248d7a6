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
    assert set(stats["tokens"]) == {"text_and_template", "image", "total"}      # text alone is not what is counted
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


def test_validate_report_has_every_row_and_stats_reads_the_same_numbers(demo_model, demo_data, tmp_path):
    src = tmp_path / "d.jsonl"
    rows = demo_data["train"].read_text().splitlines()[:6]
    src.write_text("\n".join(rows) + "\n{broken\n\n" + rows[0] + "\n")
    before = src.read_bytes()
    report = tmp_path / "rows.jsonl"
    out = run_cli("-m", "data_tools", "validate", str(src), "--recipe", "recipes/tiny-demo.yaml",
                  "--max-length", "50", "--report", str(report))
    assert out.returncode == 1 and src.read_bytes() == before
    recs = [json.loads(x) for x in report.read_text().splitlines()]
    assert [r["line"] for r in recs] == [1, 2, 3, 4, 5, 6, 7, 9]            # line 8 is blank: no row
    assert recs[6]["errors"] == ["file", "json"] and "tokens" not in recs[6]
    assert recs[7]["warnings"] == ["duplicate"] and recs[7]["tokens"] == recs[0]["tokens"]
    # the broken line fails swift's loader on the whole file: every row is marked, none loaded
    assert all(r["verdict"] == "error" and "file" in r["errors"] and r["loaded"] is False for r in recs)
    for r in recs[:6]:
        t = r["tokens"]
        assert t["total"] == t["text"] + t["template"] + t["image"] and t["image"] == sum(r["tiles"]) * 4
        assert ("too-long" in r["errors"]) == (t["total"] > 50), r
    stats = json.loads(run_cli("-m", "data_tools", "stats", str(src), "--recipe", "recipes/tiny-demo.yaml",
                               "--json").stdout)
    assert stats["samples"] == 8 and stats["usable"] == 0                     # swift would train none of it
    clean = tmp_path / "clean.jsonl"                                          # without the broken line: it loads
    clean.write_text("\n".join(rows) + "\n" + rows[0] + "\n")
    run_cli("-m", "data_tools", "validate", str(clean), "--recipe", "recipes/tiny-demo.yaml", "--max-length", "50",
            "--report", str(report))
    recs = [json.loads(x) for x in report.read_text().splitlines()]
    stats = json.loads(run_cli("-m", "data_tools", "stats", str(clean), "--recipe", "recipes/tiny-demo.yaml",
                               "--json").stdout)
    totals = sorted(r["tokens"]["total"] for r in recs if "tokens" in r and r["loaded"])
    assert stats["usable"] == len(totals) == 7 and stats["tokens"]["total"]["max"] == totals[-1]
    refused = run_cli("-m", "data_tools", "validate", str(src), "--report", str(src), "--no-tokens")
    assert refused.returncode == 2 and "never written" in refused.stderr and src.read_bytes() == before


def test_stats_and_split_read_preference_pairs(demo_model, demo_data, tmp_path):
    """A pair counts as one sample with two sides: stats gives the rejected side's lengths and holds the longer
    side to max_length; split keeps rows linked only by a rejected image on one side."""
    base = [json.loads(x) for x in demo_data["train"].read_text().splitlines()][:8]
    rows = [{**r, "rejected_response": "no " * (40 if i < 3 else 1)} for i, r in enumerate(base)]
    src = tmp_path / "pairs.jsonl"
    _write(src, rows)
    out = run_cli("-m", "data_tools", "stats", str(src), "--recipe", "recipes/tiny-demo.yaml", "--max-length", "70",
                  "--json")
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout.splitlines()[0])
    assert stats["preference_pairs"] == stats["usable"] == 8
    assert stats["tokens"]["rejected_total"]["max"] > 70 >= stats["tokens"]["total"]["max"]
    assert stats["over_max_length"] == 3                  # the three long rejected answers, not the chosen sides
    # rows 0 and 1 share nothing but row 1's rejected image, which is row 0's image: one group for split
    a, b = rows[0]["images"][0], rows[1]["images"][0]
    _write(src, [rows[0], {**rows[1], "rejected_images": [a]}] + rows[2:])
    together = 0
    for seed in range(12):
        res = run_cli("-m", "data_tools", "split", str(src), "--val", "2", "--seed", str(seed), "-o", str(tmp_path / "t"))
        assert res.returncode == 0, res.stderr
        val = [json.loads(x)["images"][0] for x in (tmp_path / "t" / "val.jsonl").read_text().splitlines()]
        assert (a in val) == (b in val), (seed, val)
        together += a in val
    assert together                                       # some seed put the pair's group in val
