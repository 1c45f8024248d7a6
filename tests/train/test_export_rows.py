"""Rows swift's loader made, written out for infer.py (a run's held-out rows, a hub split): a grounding row keeps
its objects and a video row its videos, which infer.py passes to swift as training did."""
from __future__ import annotations

import json

from PIL import Image

from internvl_kit.train.swift_data import export_rows


def test_held_out_rows_keep_their_objects_and_videos(tmp_path):
    from swift.dataset import load_dataset
    Image.new("RGB", (200, 100), "white").save(tmp_path / "a.png")
    (tmp_path / "v.mp4").write_bytes(b"")                  # the loader does not open videos
    rows = [{"messages": [{"role": "user", "content": "<image>Where is <ref-object>?"},
                          {"role": "assistant", "content": "<bbox>"}],
             "images": [str(tmp_path / "a.png")], "objects": {"ref": ["cat"], "bbox": [[10, 20, 110, 80]]}},
            {"messages": [{"role": "user", "content": "<image>Colour?"}, {"role": "assistant", "content": "white"}],
             "images": [str(tmp_path / "a.png")]},
            {"messages": [{"role": "user", "content": "<video>What moves?"}, {"role": "assistant", "content": "x"}],
             "videos": [str(tmp_path / "v.mp4")]}]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded, _ = load_dataset([str(data)], num_proc=1, load_from_cache_file=False)
    out = [json.loads(x) for x in export_rows(loaded, tmp_path / "out").read_text().splitlines()]
    assert out[0]["objects"] == {"ref": ["cat"], "bbox": [[10, 20, 110, 80]]}
    assert "objects" not in out[1] and "videos" not in out[1]             # the None-filled columns stay out
    assert out[2]["videos"] == [str(tmp_path / "v.mp4")]
